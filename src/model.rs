//! One name per Bedrock model, whatever spelling a call used (docs/DESIGN.md, "Model
//! names"): the rules that group across models or count them take this name; the
//! seed rule keeps ids byte for byte.
//!
//! Spellings of one foundation model:
//! - its id, `anthropic.claude-3-5-sonnet-20240620-v1:0`;
//! - its ARN, `arn:aws:bedrock:us-east-1::foundation-model/<id>`;
//! - a cross-Region (system-defined) inference profile, `<geography>.<id>`, by id or as
//!   `arn:aws:bedrock:<region>:<account>:inference-profile/<geography>.<id>`.
//!
//! Application inference profiles, provisioned and custom models, imported models
//! and anything else are kept as they are: their ARN is the only name they have.

/// Geography prefixes of AWS's cross-Region inference profiles.
pub const GEOGRAPHIES: [&str; 7] = ["us", "eu", "apac", "us-gov", "global", "jp", "au"];

/// The name the rules group models by. Taking a spelling apart until nothing is left
/// to take keeps the name the same however a hostile id nests them.
pub fn normalize_model(mut id: &str) -> &str {
    loop {
        let next = one_spelling_less(id);
        if next.len() == id.len() {
            return id;
        }
        id = next;
    }
}

fn one_spelling_less(id: &str) -> &str {
    match arn_resource(id) {
        Some(("foundation-model" | "inference-profile", rest)) => rest,
        Some(_) => id,
        None => without_geography(id),
    }
}

/// `(type, rest)` of a Bedrock ARN's resource `type/rest`.
fn arn_resource(id: &str) -> Option<(&str, &str)> {
    crate::arn::arn_parts(id)
        .filter(|p| p.service == "bedrock")?
        .resource
        .split_once('/')
}

/// A model id without its inference profile's geography: `us.anthropic.x` is
/// `anthropic.x`, while `anthropic.x` (a provider, not a geography) stays.
fn without_geography(id: &str) -> &str {
    match id.split_once('.') {
        Some((geo, rest)) if GEOGRAPHIES.contains(&geo) && rest.contains('.') => rest,
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SONNET: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

    #[test]
    fn every_spelling_of_a_foundation_model_is_one_name() {
        for spelling in [
            SONNET.to_string(),
            format!("arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"),
            format!("us.{SONNET}"),
            format!("eu.{SONNET}"),
            format!("apac.{SONNET}"),
            format!("global.{SONNET}"),
            format!("us-gov.{SONNET}"),
            format!("arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.{SONNET}"),
            format!("arn:aws-us-gov:bedrock:us-gov-west-1:111122223333:inference-profile/us-gov.{SONNET}"),
        ] {
            assert_eq!(normalize_model(&spelling), SONNET, "{spelling}");
        }
    }

    #[test]
    fn models_with_only_an_arn_keep_it() {
        for kept in [
            "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3",
            "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123",
            "arn:aws:bedrock:us-east-1:111122223333:custom-model/amazon.titan-text/xyz",
            "arn:aws:bedrock:us-east-1:111122223333:imported-model/k3j2",
            "amazon.titan-text-express-v1",
            "meta.llama3-70b-instruct-v1:0",
            "us.nothing-after-the-geography",
            "",
            "arn:aws:iam::111122223333:user/not-a-model",
        ] {
            assert_eq!(normalize_model(kept), kept);
        }
    }

    fn base_id() -> impl Strategy<Value = String> {
        ("[a-z][a-z0-9-]{0,12}", "[a-z0-9][a-z0-9.:-]{0,40}").prop_map(|(p, m)| format!("{p}.{m}"))
    }

    proptest! {
        #[test]
        fn the_spellings_of_any_base_id_agree(
            base in base_id(),
            geo in prop::sample::select(GEOGRAPHIES.to_vec()),
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            account in "[0-9]{12}",
        ) {
            prop_assume!(!GEOGRAPHIES.contains(&base.split('.').next().unwrap_or("")));
            let want = normalize_model(&base);
            prop_assert_eq!(want, base.as_str());
            let profile = format!("{geo}.{base}");
            prop_assert_eq!(normalize_model(&profile), want);
            let fm = format!("arn:aws:bedrock:{region}::foundation-model/{base}");
            prop_assert_eq!(normalize_model(&fm), want);
            let ip = format!("arn:aws:bedrock:{region}:{account}:inference-profile/{profile}");
            prop_assert_eq!(normalize_model(&ip), want);
        }

        #[test]
        fn normalizing_twice_changes_nothing(id in "\\PC{0,80}") {
            let once = normalize_model(&id);
            prop_assert_eq!(normalize_model(once), once);
        }
    }
}
