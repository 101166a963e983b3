//! The intent's `origins`: what to do with runs Systems Manager starts itself (State Manager
//! associations, maintenance window tasks, Automation steps; see [`crate::watch::origin`]).

use serde::{Deserialize, Serialize};

/// Where a run came from, when Systems Manager started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    /// A State Manager association.
    Association,
    /// A maintenance window's Run Command task.
    MaintenanceWindow,
    /// An Automation execution's `aws:runCommand` step.
    Automation,
}

impl OriginKind {
    pub const ALL: [OriginKind; 3] = [
        OriginKind::Association,
        OriginKind::MaintenanceWindow,
        OriginKind::Automation,
    ];

    /// The name used in the intent's `origins` and in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            OriginKind::Association => "association",
            OriginKind::MaintenanceWindow => "maintenance_window",
            OriginKind::Automation => "automation",
        }
    }

    pub fn parse(name: &str) -> Option<OriginKind> {
        OriginKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// How a person names it in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            OriginKind::Association => "State Manager association",
            OriginKind::MaintenanceWindow => "maintenance window task",
            OriginKind::Automation => "Automation execution",
        }
    }
}

/// What the intent does with one origin's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginPolicy {
    /// Judged against the intent of the principal behind the run (the default).
    #[default]
    Evaluate,
    /// Counted, not judged.
    Ignore,
}

/// The intent's `origins`: one policy per origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origins {
    #[serde(default)]
    pub association: OriginPolicy,
    #[serde(default)]
    pub maintenance_window: OriginPolicy,
    #[serde(default)]
    pub automation: OriginPolicy,
}

impl Origins {
    pub fn policy(&self, kind: OriginKind) -> OriginPolicy {
        match kind {
            OriginKind::Association => self.association,
            OriginKind::MaintenanceWindow => self.maintenance_window,
            OriginKind::Automation => self.automation,
        }
    }

    pub fn set(&mut self, kind: OriginKind, policy: OriginPolicy) {
        match kind {
            OriginKind::Association => self.association = policy,
            OriginKind::MaintenanceWindow => self.maintenance_window = policy,
            OriginKind::Automation => self.automation = policy,
        }
    }
}
