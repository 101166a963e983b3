//! Facts about the `ssm` namespace and the global condition keys, for `check`'s lints.
//!
//! Sources: AWS Service Authorization Reference, "Actions, resources, and condition keys for AWS
//! Systems Manager" (the programmatic `ssm.json`), and the IAM User Guide page "AWS global
//! condition context keys". Names only; refresh them when AWS adds actions.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

/// Every IAM action in the `ssm` namespace (without the prefix), sorted.
pub const SSM_ACTIONS: &[&str] = &[
    "AddTagsToResource",
    "AssociateOpsItemRelatedItem",
    "CancelCommand",
    "CancelMaintenanceWindowExecution",
    "CreateActivation",
    "CreateAssociation",
    "CreateAssociationBatch",
    "CreateCloudConnector",
    "CreateDocument",
    "CreateMaintenanceWindow",
    "CreateOpsItem",
    "CreateOpsMetadata",
    "CreatePatchBaseline",
    "CreateResourceDataSync",
    "DeleteActivation",
    "DeleteAssociation",
    "DeleteCloudConnector",
    "DeleteDocument",
    "DeleteInventory",
    "DeleteMaintenanceWindow",
    "DeleteOpsItem",
    "DeleteOpsMetadata",
    "DeleteParameter",
    "DeleteParameters",
    "DeletePatchBaseline",
    "DeleteResourceDataSync",
    "DeleteResourcePolicy",
    "DeregisterManagedInstance",
    "DeregisterPatchBaselineForPatchGroup",
    "DeregisterTargetFromMaintenanceWindow",
    "DeregisterTaskFromMaintenanceWindow",
    "DescribeActivations",
    "DescribeAssociation",
    "DescribeAssociationExecutionTargets",
    "DescribeAssociationExecutions",
    "DescribeAutomationExecutions",
    "DescribeAutomationStepExecutions",
    "DescribeAvailablePatches",
    "DescribeDocument",
    "DescribeDocumentParameters",
    "DescribeDocumentPermission",
    "DescribeEffectiveInstanceAssociations",
    "DescribeEffectivePatchesForPatchBaseline",
    "DescribeInstanceAssociationsStatus",
    "DescribeInstanceInformation",
    "DescribeInstancePatchStates",
    "DescribeInstancePatchStatesForPatchGroup",
    "DescribeInstancePatches",
    "DescribeInstanceProperties",
    "DescribeInventoryDeletions",
    "DescribeMaintenanceWindowExecutionTaskInvocations",
    "DescribeMaintenanceWindowExecutionTasks",
    "DescribeMaintenanceWindowExecutions",
    "DescribeMaintenanceWindowSchedule",
    "DescribeMaintenanceWindowTargets",
    "DescribeMaintenanceWindowTasks",
    "DescribeMaintenanceWindows",
    "DescribeMaintenanceWindowsForTarget",
    "DescribeOpsItems",
    "DescribeParameters",
    "DescribePatchBaselines",
    "DescribePatchGroupState",
    "DescribePatchGroups",
    "DescribePatchProperties",
    "DescribeSessions",
    "DisassociateOpsItemRelatedItem",
    "ExecuteAPI",
    "GetAccessToken",
    "GetAutomationExecution",
    "GetCalendar",
    "GetCalendarState",
    "GetCloudConnector",
    "GetCommandInvocation",
    "GetConnectionStatus",
    "GetDefaultPatchBaseline",
    "GetDeployablePatchSnapshotForInstance",
    "GetDocument",
    "GetExecutionPreview",
    "GetInventory",
    "GetInventorySchema",
    "GetMaintenanceWindow",
    "GetMaintenanceWindowExecution",
    "GetMaintenanceWindowExecutionTask",
    "GetMaintenanceWindowExecutionTaskInvocation",
    "GetMaintenanceWindowTask",
    "GetManifest",
    "GetOpsItem",
    "GetOpsMetadata",
    "GetOpsSummary",
    "GetParameter",
    "GetParameterHistory",
    "GetParameters",
    "GetParametersByPath",
    "GetPatchBaseline",
    "GetPatchBaselineForPatchGroup",
    "GetResourcePolicies",
    "GetServiceSetting",
    "LabelParameterVersion",
    "ListAssociationVersions",
    "ListAssociations",
    "ListCloudConnectors",
    "ListCommandInvocations",
    "ListCommands",
    "ListComplianceItems",
    "ListComplianceSummaries",
    "ListDocumentMetadataHistory",
    "ListDocumentVersions",
    "ListDocuments",
    "ListInstanceAssociations",
    "ListInventoryEntries",
    "ListNodes",
    "ListNodesSummary",
    "ListOpsItemEvents",
    "ListOpsItemRelatedItems",
    "ListOpsMetadata",
    "ListResourceComplianceSummaries",
    "ListResourceDataSync",
    "ListTagsForResource",
    "ModifyDocumentPermission",
    "PutCalendar",
    "PutComplianceItems",
    "PutConfigurePackageResult",
    "PutInventory",
    "PutParameter",
    "PutResourcePolicy",
    "RegisterDefaultPatchBaseline",
    "RegisterManagedInstance",
    "RegisterPatchBaselineForPatchGroup",
    "RegisterTargetWithMaintenanceWindow",
    "RegisterTaskWithMaintenanceWindow",
    "RemoveTagsFromResource",
    "RequestManagedInstanceRoleToken",
    "ResetServiceSetting",
    "ResumeSession",
    "SendAutomationSignal",
    "SendCommand",
    "StartAccessRequest",
    "StartAssociationsOnce",
    "StartAutomationExecution",
    "StartChangeRequestExecution",
    "StartExecutionPreview",
    "StartSession",
    "StopAutomationExecution",
    "TerminateSession",
    "UnlabelParameterVersion",
    "UpdateAssociation",
    "UpdateAssociationStatus",
    "UpdateCloudConnector",
    "UpdateDocument",
    "UpdateDocumentDefaultVersion",
    "UpdateDocumentMetadata",
    "UpdateInstanceAssociationStatus",
    "UpdateInstanceInformation",
    "UpdateMaintenanceWindow",
    "UpdateMaintenanceWindowTarget",
    "UpdateMaintenanceWindowTask",
    "UpdateManagedInstancePublicKey",
    "UpdateManagedInstanceRole",
    "UpdateOpsItem",
    "UpdateOpsMetadata",
    "UpdatePatchBaseline",
    "UpdateResourceDataSync",
    "UpdateServiceSetting",
    "ValidateCloudConnector",
];

/// Condition keys defined by the `ssm` service. A trailing `/` marks a tag-key family.
pub const SSM_CONDITION_KEYS: &[&str] = &[
    "ssm:AccessRequestId",
    "ssm:AutoApprove",
    "ssm:DocumentCategories",
    "ssm:DocumentType",
    "ssm:DocumentVersion",
    "ssm:InventoryTypeName",
    "ssm:NodeAccountId",
    "ssm:NodeOrgId",
    "ssm:Overwrite",
    "ssm:Policies",
    "ssm:Recursive",
    "ssm:SessionDocumentAccessCheck",
    "ssm:SourceInstanceARN",
    "ssm:SyncType",
    "ssm:resourceTag/",
    "ec2:SourceInstanceARN",
];

/// A global condition key: name (a trailing `/` marks a tag-key family), value type, and
/// whether the request may carry several values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalKey {
    pub name: &'static str,
    pub value_type: &'static str,
    pub multivalued: bool,
}

/// The global condition context keys.
pub const GLOBAL_KEYS: &[GlobalKey] = &[
    GlobalKey {
        name: "aws:PrincipalArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:PrincipalAccount",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:PrincipalOrgPaths",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:PrincipalOrgID",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:PrincipalTag/",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:PrincipalIsAWSService",
        value_type: "Bool",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:PrincipalServiceName",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:PrincipalServiceNamesList",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:PrincipalType",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:userid",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:username",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:AssumedRoot",
        value_type: "Bool",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:FederatedProvider",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:TokenIssueTime",
        value_type: "Date",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SignInSessionArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:MultiFactorAuthAge",
        value_type: "Numeric",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:MultiFactorAuthPresent",
        value_type: "Bool",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:ChatbotSourceArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:Ec2InstanceSourceVpc",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:Ec2InstanceSourcePrivateIPv4",
        value_type: "IPAddress",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceIdentity",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "ec2:RoleDelivery",
        value_type: "Numeric",
        multivalued: false,
    },
    GlobalKey {
        name: "ec2:SourceInstanceArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "glue:RoleAssumedBy",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "glue:CredentialIssuingService",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "codebuild:BuildArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "codebuild:ProjectArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "lambda:SourceFunctionArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "ssm:SourceInstanceArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "identitystore:UserId",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceIp",
        value_type: "IPAddress",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceVpc",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceVpcArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceVpce",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:VpceAccount",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:VpceOrgID",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:VpceOrgPaths",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:VpcSourceIp",
        value_type: "IPAddress",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:ResourceAccount",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:ResourceOrgPaths",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:ResourceOrgID",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:ResourceTag/",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:CalledVia",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:CalledViaFirst",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:CalledViaLast",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:ViaAWSService",
        value_type: "Bool",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:CalledViaAWSMCP",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:ViaAWSMCPService",
        value_type: "Bool",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:CurrentTime",
        value_type: "Date",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:EpochTime",
        value_type: "Date,Numeric",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:referer",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:RequestedRegion",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:RequestTag/",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:TagKeys",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:SecureTransport",
        value_type: "Bool",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceAccount",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceArn",
        value_type: "ARN",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceOrgID",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:SourceOrgPaths",
        value_type: "ArrayOfString",
        multivalued: true,
    },
    GlobalKey {
        name: "aws:UserAgent",
        value_type: "String",
        multivalued: false,
    },
    GlobalKey {
        name: "aws:IsMcpServiceAction",
        value_type: "Bool",
        multivalued: false,
    },
];

/// Keys whose values describe where a request came from on the network; the Run Command
/// setup guide requires an `aws:ViaAWSService` alternative when SendCommand is limited by them.
pub const NETWORK_ORIGIN_KEYS: &[&str] = &[
    "aws:SourceIp",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:SourceVpcArn",
    "aws:VpcSourceIp",
    "aws:VpceAccount",
    "aws:VpceOrgID",
    "aws:VpceOrgPaths",
];

/// Tag-key families: `aws:PrincipalTag/<k>` and friends.
const FAMILIES: &[&str] = &[
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
    "ssm:resourcetag/",
];

type FastMap<K, V> = FxHashMap<K, V>;

struct Index {
    /// Lowercased exact names of global keys.
    global: FastMap<String, &'static GlobalKey>,
    /// Lowercased global tag-key families.
    global_families: Vec<(String, &'static GlobalKey)>,
    /// Lowercased exact ssm (and ec2) keys.
    service: FastMap<String, ()>,
    /// Action names as AWS spells them.
    actions_exact: FastMap<&'static str, ()>,
    /// Lowercased ssm action names, sorted.
    actions: Vec<String>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut global = FastMap::default();
        let mut global_families = Vec::new();
        for k in GLOBAL_KEYS {
            let lower = k.name.to_ascii_lowercase();
            if lower.ends_with('/') {
                global_families.push((lower, k));
            } else {
                global.insert(lower, k);
            }
        }
        let mut actions: Vec<String> = SSM_ACTIONS.iter().map(|a| a.to_ascii_lowercase()).collect();
        actions.sort();
        Index {
            global,
            global_families,
            service: SSM_CONDITION_KEYS
                .iter()
                .filter(|k| !k.ends_with('/'))
                .map(|k| (k.to_ascii_lowercase(), ()))
                .collect(),
            actions_exact: SSM_ACTIONS.iter().map(|a| (*a, ())).collect(),
            actions,
        }
    })
}

/// The lowercased tag-key family `key` belongs to, if any (`aws:principaltag/`...).
fn family_of(lower: &str) -> Option<&'static str> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| lower.len() > f.len() && lower.starts_with(f))
}

/// The global key entry for an already lowercased key.
pub fn global_key_lower(lower: &str) -> Option<&'static GlobalKey> {
    let idx = index();
    if let Some(k) = idx.global.get(lower) {
        return Some(k);
    }
    let family = family_of(lower)?;
    idx.global_families
        .iter()
        .find(|(f, _)| f == family)
        .map(|(_, k)| *k)
}

/// The global key entry for `key`, ignoring case.
pub fn global_key(key: &str) -> Option<&'static GlobalKey> {
    global_key_lower(&key.to_ascii_lowercase())
}

/// Is an already lowercased key a known global or `ssm` condition key?
pub fn is_known_key_lower(lower: &str) -> bool {
    global_key_lower(lower).is_some()
        || index().service.contains_key(lower)
        || family_of(lower).is_some()
}

/// Is `key` a known global or `ssm` condition key? Case-insensitive.
pub fn is_known_key(key: &str) -> bool {
    is_known_key_lower(&key.to_ascii_lowercase())
}

/// Is `name` (without prefix) an `ssm` action? Case-insensitive.
pub fn is_ssm_action(name: &str) -> bool {
    let idx = index();
    if idx.actions_exact.contains_key(name) {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    idx.actions.binary_search(&lower).is_ok()
}

/// The `ssm` action names, lowercased and sorted.
pub fn ssm_actions_lower() -> &'static [String] {
    &index().actions
}

/// The known `ssm` action closest to `name` by edit distance, when it is close enough to be a
/// plausible typo (at most a quarter of the action's length, and at least 2). Edit distance is at
/// least the difference in length, so only actions of about the same length are compared: a
/// hostile 4,000-character name costs nothing (the `policy` fuzz target found `check` spending
/// a second on a policy of such names).
pub fn suggest_ssm_action(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let len = lower.chars().count();
    SSM_ACTIONS
        .iter()
        .filter_map(|a| {
            let limit = (a.len() / 4).max(2);
            if len.abs_diff(a.chars().count()) > limit {
                return None;
            }
            let d = strsim::levenshtein(&lower, &a.to_ascii_lowercase());
            (d <= limit).then_some((d, *a))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_list_is_sorted_unique_and_has_the_watched_actions() {
        assert!(SSM_ACTIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_ssm_action("SendCommand"));
        assert!(is_ssm_action("startsession"));
        assert!(!is_ssm_action("SendCommands2"));
    }

    #[test]
    fn suggestions_compare_only_names_of_about_the_same_length() {
        assert_eq!(suggest_ssm_action("SendCommandd"), Some("SendCommand"));
        assert_eq!(suggest_ssm_action("endCommand"), Some("SendCommand"));
        assert_eq!(suggest_ssm_action(&"m".repeat(4000)), None);
        assert_eq!(suggest_ssm_action(""), None);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest_ssm_action("SendComand"), Some("SendCommand"));
        assert_eq!(suggest_ssm_action("StartSesion"), Some("StartSession"));
        assert_eq!(suggest_ssm_action("LaunchRockets"), None);
    }

    #[test]
    fn key_families_and_case() {
        assert!(is_known_key("ssm:resourceTag/Finance"));
        assert!(is_known_key("SSM:ResourceTag/Finance"));
        assert!(is_known_key("aws:PrincipalTag/team"));
        assert!(is_known_key("AWS:SourceVpce"));
        assert!(!is_known_key("aws:SourceVpcee"));
        assert!(!is_known_key("aws:PrincipalTag/"));
        assert!(is_known_key("ssm:SessionDocumentAccessCheck"));
        assert!(global_key("aws:RequestTag/x").is_some());
        assert!(global_key("aws:TagKeys").is_some_and(|k| k.multivalued));
        assert!(global_key("aws:SourceVpce").is_some_and(|k| !k.multivalued));
    }
}
