use clap::Args;

use super::Context;
use crate::cluster::task::Journal;
use crate::error::{Error, Result};
use crate::plan::operate::Change;
use crate::plan::routing::RoutingChoice;
use crate::task::request::{CreateFlags, match_rule};

/// Request conditions, shared by `create canary` and `match`.
#[derive(Args, Debug, Clone, Default)]
pub struct MatchFlags {
    /// Canary by request: header NAME=VALUE must match exactly. Repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Canary by request: header NAME must match the regular expression RE. Repeatable.
    #[arg(long = "header-regex", value_name = "NAME=RE")]
    pub header_regex: Vec<String>,
    /// Canary by request: the whole Cookie header equals this text.
    #[arg(long)]
    pub cookie: Option<String>,
    /// Canary by request: the whole Cookie header matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub cookie_regex: Option<String>,
    /// Canary by request: the URI starts with this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub uri_prefix: Option<String>,
    /// Canary by request: the URI matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub uri_regex: Option<String>,
    /// Canary by request: client operating systems, comma-separated: windows,linux,macos,android,ios.
    #[arg(long, value_name = "LIST")]
    pub os: Option<String>,
}

impl MatchFlags {
    /// Copies the conditions into the flags the request builder reads.
    pub fn fill(&self, f: &mut CreateFlags) {
        f.headers = self.headers.clone();
        f.header_regex = self.header_regex.clone();
        f.cookie = self.cookie.clone();
        f.cookie_regex = self.cookie_regex.clone();
        f.uri_prefix = self.uri_prefix.clone();
        f.uri_regex = self.uri_regex.clone();
        f.os = self.os.clone();
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # Requests with the header x-beta: 1 from Android or iOS clients go to the new version
  kubectl grayscale match reviews-canary --header x-beta=1 --os android,ios

  # Users whose cookie carries user=jason
  kubectl grayscale match reviews-canary --cookie-regex '^(.*?;)?(user=jason)(;.*)?$'

  # Back to routing by ratio: 10% to the new version
  kubectl grayscale match reviews-canary --ratio 10")]
pub struct MatchArgs {
    /// The task's name.
    pub name: String,
    #[command(flatten)]
    pub conditions: MatchFlags,
    /// Route by ratio again, the new version getting W percent.
    #[arg(long, value_name = "W", conflicts_with_all = ["headers", "header_regex", "cookie", "cookie_regex", "uri_prefix", "uri_regex", "os"])]
    pub ratio: Option<i64>,
    /// Who writes the routing objects (see the README).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Auto)]
    pub routing: RoutingChoice,
    #[command(flatten)]
    pub deadline: super::change::Deadline,
    #[command(flatten)]
    pub force: super::change::Force,
}

pub async fn run(ctx: &Context, args: MatchArgs) -> Result<()> {
    let change = match args.ratio {
        Some(w) if (0..=100).contains(&w) => Change::Ratio(w as u8),
        Some(w) => return Err(Error::invalid("--ratio", format!("{w} must be between 0 and 100"))),
        None => {
            let mut flags = CreateFlags::default();
            args.conditions.fill(&mut flags);
            let mut problems = Vec::new();
            let rule = match_rule(&mut problems, &flags, None);
            if !problems.is_empty() {
                return Err(Error::Invalid(problems));
            }
            match rule {
                Some(rule) => Change::Match(rule),
                None => {
                    return Err(Error::invalid(
                        "match",
                        "give at least one condition (--header, --cookie, --uri-prefix, --os...) or --ratio W",
                    ));
                }
            }
        }
    };
    super::change::change_and_route(
        ctx,
        &args.name,
        Journal::Push("match"),
        args.routing,
        args.deadline,
        args.force,
        move |_| Ok(change.clone()),
    )
    .await?;
    Ok(())
}
