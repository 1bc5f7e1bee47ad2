//! What an ARN says: the account a principal belongs to, and the partition of a Region.

/// The account an IAM or STS principal ARN names (`arn:<partition>:<service>::<account>:...`),
/// when it is a 12-digit account id.
pub fn principal_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(_), Some(_), Some(account), Some(_)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    crate::log_keys::is_account_id(account).then_some(account)
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
