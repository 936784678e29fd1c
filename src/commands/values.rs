//! How the planning core's choices appear on the command line: the core knows nothing of clap.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::plan::rbac::Verb;
use crate::plan::routing::RoutingChoice;

impl ValueEnum for RoutingChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &RoutingChoice::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let (name, help) = self.describe();
        Some(PossibleValue::new(name).help(help))
    }
}

impl ValueEnum for Verb {
    fn value_variants<'a>() -> &'a [Self] {
        &Verb::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let v = PossibleValue::new(self.name());
        Some(match self {
            Verb::ShiftGated => {
                v.help("a gradual shift with metric gates (reads Prometheus through the service proxy)")
            }
            _ => v,
        })
    }
}
