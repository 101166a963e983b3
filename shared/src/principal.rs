//! Who made a call, and the principal keys of the request context that follow from it
//! (IAM global condition context keys: aws:PrincipalArn, aws:PrincipalAccount,
//! aws:PrincipalType, aws:username).

use serde::Serialize;

use crate::context::RequestContext;

/// The caller kinds CloudTrail reports in `userIdentity.type` that identity policies govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PrincipalType {
    User,
    AssumedRole,
    FederatedUser,
    Account,
}

impl PrincipalType {
    /// The `aws:PrincipalType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "User",
            PrincipalType::AssumedRole => "AssumedRole",
            PrincipalType::FederatedUser => "FederatedUser",
            PrincipalType::Account => "Account",
        }
    }
}

/// A caller's identities as the intent file's `match` patterns see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub principal_type: PrincipalType,
    /// The ARN CloudTrail reports (`arn:aws:sts::...:assumed-role/Role/session` for roles).
    pub arn: String,
    /// The IAM role behind an assumed-role session (with its path when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub account: String,
    /// The IAM user name, for IAM users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// Why an ARN cannot name a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{arn}` is not a caller ARN: {reason}")]
pub struct CallerError {
    pub arn: String,
    pub reason: &'static str,
}

impl Caller {
    /// Derives a caller from an ARN: an IAM user, an assumed-role session, a role (taken as a
    /// session of that role), a federated user or the account root.
    pub fn from_arn(arn: &str) -> Result<Caller, CallerError> {
        let err = |reason| CallerError {
            arn: arn.to_string(),
            reason,
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, _region, account, resource] = parts.as_slice() else {
            return Err(err(
                "expected arn:partition:service:region:account:resource",
            ));
        };
        if *prefix != "arn" || account.is_empty() {
            return Err(err(
                "expected arn:partition:service:region:account:resource",
            ));
        }
        let (kind, rest) = resource.split_once('/').unwrap_or((resource, ""));
        let account = (*account).to_string();
        match (*service, kind) {
            ("iam", "user") if !rest.is_empty() => Ok(Caller {
                principal_type: PrincipalType::User,
                arn: arn.to_string(),
                role_arn: None,
                account,
                user_name: rest.rsplit('/').next().map(str::to_string),
            }),
            ("iam", "role") if !rest.is_empty() => Ok(Caller {
                principal_type: PrincipalType::AssumedRole,
                arn: arn.to_string(),
                role_arn: Some(arn.to_string()),
                account,
                user_name: None,
            }),
            ("sts", "assumed-role") => {
                let (role, _session) = rest
                    .split_once('/')
                    .ok_or_else(|| err("an assumed-role ARN names a role and a session"))?;
                Ok(Caller {
                    principal_type: PrincipalType::AssumedRole,
                    arn: arn.to_string(),
                    role_arn: Some(format!("arn:{partition}:iam::{account}:role/{role}")),
                    account,
                    user_name: None,
                })
            }
            ("sts", "federated-user") if !rest.is_empty() => Ok(Caller {
                principal_type: PrincipalType::FederatedUser,
                arn: arn.to_string(),
                role_arn: None,
                account,
                user_name: None,
            }),
            ("iam", "root") => Ok(Caller {
                principal_type: PrincipalType::Account,
                arn: arn.to_string(),
                role_arn: None,
                account,
                user_name: None,
            }),
            _ => Err(err(
                "expected an IAM user, role, assumed-role session, federated user or root",
            )),
        }
    }

    /// The identities `match` patterns are compared with: the raw ARN and the role ARN.
    pub fn identities(&self) -> Vec<&str> {
        let mut ids = vec![self.arn.as_str()];
        if let Some(role) = &self.role_arn {
            if role != &self.arn {
                ids.push(role);
            }
        }
        ids
    }

    /// `aws:PrincipalArn` (the role ARN for assumed roles), `aws:PrincipalAccount`,
    /// `aws:PrincipalType` and `aws:username` (IAM users only), without overwriting keys the
    /// context already has.
    pub fn fill_context(&self, ctx: &mut RequestContext) {
        let principal_arn = match self.principal_type {
            PrincipalType::AssumedRole => self.role_arn.as_deref().unwrap_or(&self.arn),
            _ => &self.arn,
        };
        ctx.insert_default("aws:PrincipalArn", principal_arn);
        ctx.insert_default("aws:PrincipalAccount", self.account.as_str());
        ctx.insert_default("aws:PrincipalType", self.principal_type.as_str());
        if let Some(name) = &self.user_name {
            ctx.insert_default("aws:username", name.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_map_to_their_role() {
        let c = Caller::from_arn("arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice")
            .unwrap();
        assert_eq!(c.principal_type, PrincipalType::AssumedRole);
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/JuniorEngineer")
        );
        let mut ctx = RequestContext::new();
        c.fill_context(&mut ctx);
        // aws:PrincipalArn: "For IAM roles, the request context returns the ARN of the role, not
        // the ARN of the user that assumed the role."
        assert_eq!(
            ctx.get("aws:PrincipalArn").unwrap().values(),
            ["arn:aws:iam::111122223333:role/JuniorEngineer"]
        );
        assert!(
            ctx.get("aws:username").is_none(),
            "aws:username is for IAM users only"
        );
        assert_eq!(c.identities().len(), 2);
    }

    #[test]
    fn users_carry_their_name() {
        let c = Caller::from_arn("arn:aws:iam::111122223333:user/ops/bob").unwrap();
        let mut ctx = RequestContext::new();
        c.fill_context(&mut ctx);
        assert_eq!(ctx.get("aws:username").unwrap().values(), ["bob"]);
        assert_eq!(ctx.get("aws:PrincipalType").unwrap().values(), ["User"]);
        assert_eq!(
            ctx.get("aws:PrincipalAccount").unwrap().values(),
            ["111122223333"]
        );
    }

    #[test]
    fn rejects_non_caller_arns() {
        assert!(Caller::from_arn("arn:aws:ec2:us-east-1:1:instance/i-1").is_err());
        assert!(Caller::from_arn("alice").is_err());
        assert!(Caller::from_arn("arn:aws:sts::1:assumed-role/OnlyRole").is_err());
    }
}
