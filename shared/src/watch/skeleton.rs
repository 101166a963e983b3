//! What the quarantine queue keeps of an event: an allow-listed skeleton.
//!
//! Every object and array is kept (so each JSON path and its shape stay visible), and so are
//! numbers, booleans and nulls; a string is kept only under a key of [`KEPT`] (ids, names,
//! types, times, ARNs, addresses: what identifies the event, its caller and its resources, and
//! every field tagwatch decides on). Any other string becomes `"<string, N bytes>"`. So command
//! comments, session reasons, command and Automation parameters, session tokens and other
//! services' request parameters never reach the queue, whatever their key, while a kept
//! SSM event still normalises to exactly what the original did (tested over every fixture), so
//! it can be sent back to its function once the deployment is fixed.

use serde_json::{Map, Value};

/// The keys whose string values are kept: the EventBridge envelope, CloudTrail's identity and
/// call fields, the request and response fields tagwatch reads, and the SSM status events'.
pub const KEPT: &[&str] = &[
    // EventBridge envelope, and Lambda's failure-destination record.
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "functionArn",
    "condition",
    // CloudTrail record.
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "eventType",
    "eventID",
    "eventCategory",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestID",
    "recipientAccountId",
    "errorCode",
    "errorMessage",
    "vpcEndpointId",
    "sharedEventID",
    // Who called.
    "type",
    "principalId",
    "arn",
    "accountId",
    "userName",
    "invokedBy",
    "mfaAuthenticated",
    "creationDate",
    "sourceIdentity",
    // SendCommand / StartSession / sessions.
    "documentName",
    "documentVersion",
    "instanceIds",
    "InstanceIds",
    "key",
    "values",
    "Key",
    "Values",
    "target",
    "sessionId",
    "commandId",
    "status",
    "cloudWatchLogGroupName",
    "outputS3BucketName",
    "outputS3Region",
    // Runs Systems Manager starts itself.
    "name",
    "associationId",
    "windowId",
    "windowTaskId",
    "taskArn",
    "taskType",
    "serviceRoleArn",
    "automationExecutionId",
    "AutomationAssumeRole",
    "result",
    // SSM status events.
    "command-id",
    "document-name",
    "document-version",
    "instance-id",
    "association-id",
    "requested-date-time",
    "expire-after",
];

/// The allow-listed skeleton of `v` (see the module doc).
pub fn skeleton(v: &Value) -> Value {
    kept(v, false)
}

fn kept(v: &Value, keep_strings: bool) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), kept(v, KEPT.contains(&k.as_str()))))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| kept(i, keep_strings)).collect()),
        Value::String(s) if !keep_strings => Value::String(format!("<string, {} bytes>", s.len())),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn free_text_and_unknown_fields_become_their_type_and_size() {
        let event = json!({
            "id": "e-1",
            "detail": {
                "eventName": "SendCommand",
                "requestParameters": {
                    "documentName": "AWS-RunShellScript",
                    "comment": "rotate the root password to hunter2",
                    "parameters": {"commands": ["echo SECRET"], "AutomationAssumeRole": ["arn:aws:iam::1:role/R"]},
                    "reason": "because",
                    "timeoutSeconds": 600,
                    "interactive": false
                },
                "responseElements": {"tokenValue": "SECRET-TOKEN", "streamUrl": "wss://x"},
                "otherService": {"value": "db-password"}
            }
        });
        let s = skeleton(&event);
        let text = s.to_string();
        for secret in ["hunter2", "SECRET", "because", "wss://", "db-password"] {
            assert!(!text.contains(secret), "{secret} kept: {text}");
        }
        let r = &s["detail"]["requestParameters"];
        assert_eq!(r["documentName"], "AWS-RunShellScript");
        assert_eq!(r["comment"], "<string, 35 bytes>");
        assert_eq!(r["parameters"]["commands"], json!(["<string, 11 bytes>"]));
        assert_eq!(
            r["parameters"]["AutomationAssumeRole"],
            json!(["arn:aws:iam::1:role/R"])
        );
        assert_eq!(r["timeoutSeconds"], 600, "numbers and booleans are kept");
        assert_eq!(r["interactive"], false);
        assert_eq!(s["id"], "e-1");
        assert_eq!(
            s["detail"]["otherService"]["value"], "<string, 11 bytes>",
            "every path stays visible"
        );
    }
}
