//! What the deployed function reads from its environment: its own variables beside
//! the detector's [`config::VARIABLES`](crate::config::VARIABLES), and which account an
//! input may speak for ([`Attribution`]).

use crate::config::{non_blank, Config, ConfigError};
use crate::event::LogPayload;

/// The function's own variables, read by [`LambdaSettings::from_vars`] beside the
/// detector's [`config::VARIABLES`](crate::config::VARIABLES) and the runtime's `AWS_*`.
pub const VARIABLES: [&str; 7] = [
    "COUNTER_TABLE",
    "ALERT_TOPIC_ARN",
    "EVENT_BUS_NAME",
    "SECURITY_HUB",
    "ACCOUNT_ID",
    "REQUIRE_LOG_LAYOUT",
    "ORGANIZATION_LOG_GROUPS",
];

/// Which account an input may speak for, beyond what its location says
/// (docs/DESIGN.md, "A record speaks only for its own account").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Objects whose key is in no AWS log layout are skipped and counted, never read
    /// as free-form logs (`REQUIRE_LOG_LAYOUT`; on in an organization).
    pub require_log_layout: bool,
    /// CloudWatch Logs groups of an organization trail (`ORGANIZATION_LOG_GROUPS`):
    /// each stream speaks for the account CloudTrail names it after.
    pub organization_log_groups: Vec<String>,
}

impl Attribution {
    /// The account a CloudWatch Logs payload speaks for, and the Region of its logs:
    /// the account in the stream's name for an organization trail's group, else the
    /// payload's owner (and the function's Region).
    pub(super) fn of_payload<'a>(
        &self,
        payload: &'a LogPayload,
        region: &'a str,
    ) -> (Option<&'a str>, &'a str) {
        if self.organization_log_groups.contains(&payload.log_group) {
            if let Some((_, account, stream_region)) =
                crate::log_keys::cloudtrail_stream(&payload.log_stream)
            {
                return (Some(account), stream_region);
            }
        }
        let owner = Some(payload.owner.as_str()).filter(|o| crate::log_keys::is_account_id(o));
        (owner, region)
    }
}

/// Everything the deployed function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    pub table: String,
    pub topic_arn: String,
    pub config: Config,
    pub function_name: String,
    /// The function's region: in CloudWatch Logs stream ARNs and Security Hub findings.
    pub region: String,
    /// EventBridge bus that also gets every alert (`EVENT_BUS_NAME`).
    pub event_bus: Option<String>,
    /// With `SECURITY_HUB=true`: the function's account (`ACCOUNT_ID`), whose
    /// Security Hub gets every alert as a finding.
    pub security_hub_account: Option<String>,
    pub attribution: Attribution,
}

impl LambdaSettings {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let optional = |name: &str| non_blank(&var, name);
        let required = |name: &'static str| {
            optional(name).ok_or_else(|| ConfigError::new(name, "", "required"))
        };
        let require_log_layout = match optional("REQUIRE_LOG_LAYOUT") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(ConfigError::new(
                    "REQUIRE_LOG_LAYOUT",
                    v,
                    "must be true or false",
                ))
            }
        };
        let organization_log_groups: Vec<String> = optional("ORGANIZATION_LOG_GROUPS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = organization_log_groups.iter().find(|g| g.len() > 512) {
            return Err(ConfigError::new(
                "ORGANIZATION_LOG_GROUPS",
                bad.clone(),
                "a log group name is at most 512 characters",
            ));
        }
        let security_hub = match optional("SECURITY_HUB") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => return Err(ConfigError::new("SECURITY_HUB", v, "must be true or false")),
        };
        let security_hub_account = if security_hub {
            let account = required("ACCOUNT_ID")?;
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::new(
                    "ACCOUNT_ID",
                    account,
                    "must be a 12-digit AWS account id",
                ));
            }
            Some(account)
        } else {
            None
        };
        Ok(Self {
            table: required("COUNTER_TABLE")?,
            topic_arn: required("ALERT_TOPIC_ARN")?,
            config: Config::from_vars(&var)?,
            function_name: var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "bedrock-denied-models".into()),
            region: var("AWS_REGION").unwrap_or_else(|| crate::aws::FALLBACK_REGION.into()),
            event_bus: optional("EVENT_BUS_NAME"),
            security_hub_account,
            attribution: Attribution {
                require_log_layout,
                organization_log_groups,
            },
        })
    }
}
