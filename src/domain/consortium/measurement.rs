//! What the consortium agrees about its members' registers (SPEC §15), so that the modelled
//! estimates are computed from parameters every member approved: `[estimates]` (the method and
//! the reference members that anchor the scale) and, per member, `[members.measurement]` (how
//! much each direction undercounts, how accurate it is, and the minimum duration its registers
//! count a move by). Changed only by a consortium version, like everything in the document.

use crate::domain::model::Country;

/// `[estimates] method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EstimateMethod {
    /// No estimates in the view (the default).
    #[default]
    None,
    /// The closed-form measurement model of SPEC §15.
    ImemLite,
}

impl EstimateMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateMethod::None => "none",
            EstimateMethod::ImemLite => "imem-lite",
        }
    }

    pub fn parse(text: &str) -> Option<EstimateMethod> {
        match text {
            "none" => Some(EstimateMethod::None),
            "imem-lite" => Some(EstimateMethod::ImemLite),
            _ => None,
        }
    }
}

/// `[estimates]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Estimates {
    pub method: EstimateMethod,
    /// The members whose reports anchor the scale, sorted and unique.
    pub reference: Vec<Country>,
}

impl Estimates {
    /// Nothing declared: the document reads as it did before `[estimates]` existed.
    pub fn is_default(&self) -> bool {
        *self == Estimates::default()
    }
}

/// How much of the true flow a register misses (the class of its coverage prior).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Undercount {
    Low,
    #[default]
    Medium,
    High,
}

impl Undercount {
    pub fn as_str(self) -> &'static str {
        match self {
            Undercount::Low => "low",
            Undercount::Medium => "medium",
            Undercount::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Undercount> {
        match text {
            "low" => Some(Undercount::Low),
            "medium" => Some(Undercount::Medium),
            "high" => Some(Undercount::High),
            _ => None,
        }
    }
}

/// How far a register's counts scatter around its coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Accuracy {
    High,
    #[default]
    Low,
}

impl Accuracy {
    pub fn as_str(self) -> &'static str {
        match self {
            Accuracy::High => "high",
            Accuracy::Low => "low",
        }
    }

    pub fn parse(text: &str) -> Option<Accuracy> {
        match text {
            "high" => Some(Accuracy::High),
            "low" => Some(Accuracy::Low),
            _ => None,
        }
    }
}

/// The minimum durations a register may count a move by (months; 0 = none, 60 = permanent).
pub const DURATION_RULES: [u32; 5] = [0, 3, 6, 12, 60];

/// One direction of a member's registers: emigration (its `OUT` side) or immigration (`IN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Register {
    pub undercount: Undercount,
    pub accuracy: Accuracy,
    /// One of [`DURATION_RULES`].
    pub duration_months: u32,
}

/// `[members.measurement]`: both directions of one member's registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    pub emigration: Register,
    pub immigration: Register,
}

impl Default for Measurement {
    fn default() -> Measurement {
        let register = Register {
            undercount: Undercount::Medium,
            accuracy: Accuracy::Low,
            duration_months: 12,
        };
        Measurement {
            emigration: register,
            immigration: register,
        }
    }
}

impl Measurement {
    pub fn is_default(&self) -> bool {
        *self == Measurement::default()
    }
}
