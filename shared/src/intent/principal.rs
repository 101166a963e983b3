//! Who made a call, and the principal keys of the request context that follow from it
//! (IAM global condition context keys: aws:PrincipalArn, aws:PrincipalAccount,
//! aws:PrincipalType, aws:username).

use serde::{Deserialize, Serialize};

use crate::iam::request::RequestContext;

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

/// Who made a call: CloudTrail's `userIdentity`, or a caller named by ARN (`simulate
/// --principal`). The watcher, `replay` and `simulate` build request contexts from this one
/// type, so they agree on the principal keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `userIdentity.type`: `IAMUser`, `AssumedRole`, `FederatedUser`, `Root`, `AWSService`...
    pub identity_type: String,
    /// `userIdentity.arn` exactly as recorded (absent for service callers); for an assumed role
    /// the session ARN `arn:aws:sts::...:assumed-role/Role/session`.
    pub arn: Option<String>,
    /// The role behind an assumed-role session (`sessionContext.sessionIssuer.arn`, with its
    /// path).
    pub role_arn: Option<String>,
    pub account: Option<String>,
    /// `userIdentity.userName` (IAM users).
    pub user_name: Option<String>,
    /// `userIdentity.principalId` (`aws:userid`).
    pub principal_id: Option<String>,
    /// `sessionContext.attributes.mfaAuthenticated`, when recorded.
    pub mfa: Option<bool>,
    /// `userIdentity.invokedBy`: the AWS service that made the call on the caller's behalf (or,
    /// for an `AWSService` caller, the service itself).
    pub invoked_by: Option<String>,
    /// `sessionContext.sourceIdentity` (`aws:SourceIdentity`), when the session has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
}

/// Why an ARN cannot name a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{arn}` is not a caller ARN: {reason}")]
pub struct CallerError {
    pub arn: String,
    pub reason: &'static str,
}

/// The prefix of intent `match` patterns that name an AWS service caller (`service:<name>`).
pub const SERVICE_PREFIX: &str = "service:";

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
        let caller = |identity_type: &str| Caller {
            identity_type: identity_type.to_string(),
            arn: Some(arn.to_string()),
            role_arn: None,
            account: Some((*account).to_string()),
            user_name: None,
            principal_id: None,
            mfa: None,
            invoked_by: None,
            source_identity: None,
        };
        match (*service, kind) {
            ("iam", "user") if !rest.is_empty() => Ok(Caller {
                user_name: rest.rsplit('/').next().map(str::to_string),
                ..caller("IAMUser")
            }),
            ("iam", "role") if !rest.is_empty() => Ok(Caller {
                role_arn: Some(arn.to_string()),
                ..caller("AssumedRole")
            }),
            ("sts", "assumed-role") => {
                let (role, _session) = rest
                    .split_once('/')
                    .ok_or_else(|| err("an assumed-role ARN names a role and a session"))?;
                Ok(Caller {
                    role_arn: Some(format!("arn:{partition}:iam::{account}:role/{role}")),
                    ..caller("AssumedRole")
                })
            }
            ("sts", "federated-user") if !rest.is_empty() => Ok(caller("FederatedUser")),
            ("iam", "root") => Ok(caller("Root")),
            _ => Err(err(
                "expected an IAM user, role, assumed-role session, federated user or root",
            )),
        }
    }

    /// An AWS service calling with its own identity (`userIdentity.type` `AWSService`).
    pub fn service(name: &str, account: Option<&str>) -> Caller {
        Caller {
            identity_type: "AWSService".to_string(),
            arn: None,
            role_arn: None,
            account: account.map(str::to_string),
            user_name: None,
            principal_id: None,
            mfa: None,
            invoked_by: Some(name.to_string()),
            source_identity: None,
        }
    }

    /// `aws:PrincipalType`, for the caller kinds identity policies govern.
    pub fn principal_type(&self) -> Option<PrincipalType> {
        match self.identity_type.as_str() {
            "IAMUser" => Some(PrincipalType::User),
            "AssumedRole" => Some(PrincipalType::AssumedRole),
            "FederatedUser" => Some(PrincipalType::FederatedUser),
            "Root" => Some(PrincipalType::Account),
            _ => None,
        }
    }

    /// The service an `AWSService` caller is (its `invokedBy`).
    pub fn service_name(&self) -> Option<&str> {
        (self.identity_type == "AWSService")
            .then_some(self.invoked_by.as_deref())
            .flatten()
    }

    /// The identities intent `match` patterns are compared with: the user or session ARN, the
    /// role ARN behind a session, and `service:<name>` for an AWS service caller.
    pub fn identities(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::with_capacity(2);
        if let Some(a) = &self.arn {
            ids.push(a.clone());
        }
        if let Some(r) = self
            .role_arn
            .as_deref()
            .filter(|r| Some(*r) != self.arn.as_deref())
        {
            ids.push(r.to_string());
        }
        if let Some(service) = self.service_name() {
            ids.push(format!("{SERVICE_PREFIX}{service}"));
        }
        ids
    }

    /// The principal behind the call, whose AccessDenied calls a spike window counts: the role
    /// for an assumed-role session (session names are the caller's choice, so counting per
    /// session would let a prober rotating them stay under any threshold), the ARN otherwise,
    /// `service:<name>` for a service caller, else the principal id.
    pub fn principal_key(&self) -> Option<String> {
        if self.identity_type == "AssumedRole" {
            if let Some(role) = &self.role_arn {
                return Some(role.clone());
            }
        }
        if let Some(arn) = &self.arn {
            return Some(arn.clone());
        }
        if let Some(service) = self.service_name() {
            return Some(format!("{SERVICE_PREFIX}{service}"));
        }
        self.principal_id
            .as_ref()
            .map(|id| format!("principal-id:{id}"))
    }

    /// The principal keys of the request context (IAM: "AWS global condition context keys"),
    /// without overwriting keys the context already has: `aws:PrincipalArn` (the role ARN for
    /// assumed roles), `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:userid`,
    /// `aws:username` (IAM users only), `aws:PrincipalIsAWSService` and
    /// `aws:PrincipalServiceName` (service callers).
    pub fn fill_context(&self, ctx: &mut RequestContext) {
        let principal_arn = match self.principal_type() {
            Some(PrincipalType::AssumedRole) => self.role_arn.as_deref().or(self.arn.as_deref()),
            _ => self.arn.as_deref(),
        };
        if let Some(arn) = principal_arn {
            ctx.insert_default("aws:PrincipalArn", arn);
        }
        if let Some(account) = &self.account {
            ctx.insert_default("aws:PrincipalAccount", account.as_str());
        }
        if let Some(t) = self.principal_type() {
            ctx.insert_default("aws:PrincipalType", t.as_str());
        }
        if let Some(id) = &self.principal_id {
            ctx.insert_default("aws:userid", id.as_str());
        }
        if self.identity_type == "IAMUser" {
            if let Some(name) = &self.user_name {
                ctx.insert_default("aws:username", name.as_str());
            }
        }
        let service = self.service_name();
        ctx.insert_default(
            "aws:PrincipalIsAWSService",
            if service.is_some() { "true" } else { "false" },
        );
        if let Some(name) = service {
            ctx.insert_default("aws:PrincipalServiceName", name);
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
        assert_eq!(c.principal_type(), Some(PrincipalType::AssumedRole));
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
