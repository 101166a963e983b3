//! The request context IAM built for a recorded call: what its CloudTrail record tells of
//! the caller, the network path, the time and the region (IAM: "AWS global condition context
//! keys"), and which keys it cannot tell.

use crate::iam::request::RequestContext;
use crate::iam::values;
use crate::watch::event::Activity;

/// How a call reached Systems Manager, as far as its CloudTrail record tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The caller called from an address (`sourceIPAddress` is an IP, no `invokedBy`), or an
    /// AWS service called with its own identity: `aws:ViaAWSService` is false.
    Direct,
    /// A forward access session: the service in `invokedBy` made the call with the caller's
    /// credentials, and `sourceIPAddress` is that service's name. `aws:ViaAWSService` is true.
    Service(String),
    /// The record does not tell (a service name as the source with no `invokedBy`, an
    /// `invokedBy` with an address, "AWS Internal"): `aws:ViaAWSService` is unknown.
    Unknown,
}

/// Services that set `aws:CalledVia` when they call on a principal's behalf (IAM: "AWS global
/// condition context keys", aws:CalledVia).
pub const CALLED_VIA_SERVICES: &[&str] = &[
    "athena.amazonaws.com",
    "cloudformation.amazonaws.com",
    "dynamodb.amazonaws.com",
    "kms.amazonaws.com",
];

/// How `a` reached Systems Manager.
pub fn via(a: &Activity) -> Via {
    let c = &a.source.caller;
    let source = a.source.source_ip.as_deref();
    let from_address = source.is_some_and(|s| values::parse_ip(s).is_some());
    if c.service_name().is_some() {
        // A service principal's own call is not a forward access session.
        return Via::Direct;
    }
    match c.invoked_by.as_deref() {
        None if from_address => Via::Direct,
        Some(service) if service.ends_with(".amazonaws.com") && source == Some(service) => {
            Via::Service(service.to_string())
        }
        _ => Via::Unknown,
    }
}

/// Keys a CloudTrail record of SendCommand / StartSession settles for every caller: when one
/// is absent from the context, it is absent from the request (not unknown). The calls carry
/// no request tags.
const SETTLED: &[&str] = &[
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:principalisawsservice",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:userid",
    "aws:username",
    "aws:sourceidentity",
    "aws:requestedregion",
    "aws:currenttime",
    "aws:epochtime",
    "aws:useragent",
    "aws:requesttag/",
    "aws:tagkeys",
];

/// The request context IAM built for an activity, from its CloudTrail record (IAM: "AWS global
/// condition context keys"): the principal keys ([`crate::intent::principal::Caller::fill_context`], shared with
/// `simulate --principal`), the network keys, time and region. Keys the record cannot tell
/// are unknown (the context is open: every key not set and not settled is unknown), so a
/// decision that depends on them is reported as such. Resource tags are the caller's to add.
pub fn activity_context(a: &Activity) -> RequestContext {
    let mut ctx = RequestContext::new();
    ctx.absent_is_unknown_except(SETTLED);
    let c = &a.source.caller;
    c.fill_context(&mut ctx);
    if let Some(id) = &c.source_identity {
        ctx.insert("aws:SourceIdentity", id.as_str());
    }
    network_keys(a, &mut ctx);
    service_keys(a, &mut ctx);
    ctx.insert("aws:RequestedRegion", a.meta.region.as_str());
    match values::format_date(a.meta.event_epoch_ms) {
        Some(now) => ctx.insert("aws:CurrentTime", now),
        None => ctx.mark_unknown("aws:CurrentTime"),
    }
    ctx.insert(
        "aws:EpochTime",
        (a.meta.event_epoch_ms.div_euclid(1000)).to_string(),
    );
    if let Some(agent) = &a.source.user_agent {
        ctx.insert("aws:UserAgent", agent.as_str());
    }
    // Session attributes: `mfaAuthenticated` is recorded for every session; a call without
    // session attributes used long-term keys, where the MFA keys are absent.
    match c.mfa {
        Some(true) => ctx.insert("aws:MultiFactorAuthPresent", "true"),
        Some(false) => {
            ctx.insert("aws:MultiFactorAuthPresent", "false");
            ctx.known_absent("aws:MultiFactorAuthAge");
        }
        None => {
            ctx.known_absent("aws:MultiFactorAuthPresent");
            ctx.known_absent("aws:MultiFactorAuthAge");
        }
    }
    if a.source.tls {
        ctx.insert("aws:SecureTransport", "true");
    }
    ctx
}

/// The network keys. Through a VPC endpoint, `aws:SourceIp` is absent and the private address
/// is `aws:VpcSourceIp`; the VPC itself is not in the record.
fn network_keys(a: &Activity, ctx: &mut RequestContext) {
    let address = a
        .source
        .source_ip
        .as_deref()
        .filter(|ip| values::parse_ip(ip).is_some());
    match (&a.source.vpc_endpoint, address) {
        (Some(vpce), ip) => {
            ctx.insert("aws:SourceVpce", vpce.as_str());
            ctx.known_absent("aws:SourceIp");
            match ip {
                Some(ip) => ctx.insert("aws:VpcSourceIp", ip),
                None => ctx.mark_unknown("aws:VpcSourceIp"),
            }
        }
        (None, Some(ip)) => {
            ctx.insert("aws:SourceIp", ip);
            for k in ["aws:SourceVpce", "aws:SourceVpc", "aws:VpcSourceIp"] {
                ctx.known_absent(k);
            }
        }
        // A service name as the source: the address the request came from is not recorded.
        (None, None) => {
            for k in ["aws:SourceVpce", "aws:SourceVpc", "aws:VpcSourceIp"] {
                ctx.known_absent(k);
            }
        }
    }
}

/// Whether an AWS service made the call for the principal (`aws:ViaAWSService`, the
/// `aws:CalledVia` keys) and, for a direct call by a principal, the absent service-source keys.
fn service_keys(a: &Activity, ctx: &mut RequestContext) {
    let c = &a.source.caller;
    match &via(a) {
        Via::Direct => {
            ctx.insert("aws:ViaAWSService", "false");
            for k in ["aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast"] {
                ctx.known_absent(k);
            }
            if c.service_name().is_none() {
                for k in [
                    "aws:SourceArn",
                    "aws:SourceAccount",
                    "aws:SourceOrgID",
                    "aws:SourceOrgPaths",
                ] {
                    ctx.known_absent(k);
                }
            }
        }
        Via::Service(service) => {
            ctx.insert("aws:ViaAWSService", "true");
            // The record names the service that called; CloudTrail shows no longer chain.
            if CALLED_VIA_SERVICES.contains(&service.as_str()) {
                ctx.insert_multi("aws:CalledVia", vec![service.clone()]);
                ctx.insert("aws:CalledViaFirst", service.as_str());
                ctx.insert("aws:CalledViaLast", service.as_str());
            } else {
                for k in ["aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast"] {
                    ctx.known_absent(k);
                }
            }
        }
        Via::Unknown => {}
    }
}
