use clap::{Args, ValueEnum};

use super::Context;
use crate::error::Result;
use crate::output::print;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Args, Debug)]
#[command(after_help = "Task names, versions and namespaces complete from the cluster.

Examples:
  source <(kubectl-grayscale completion bash)          # bash, or add it to ~/.bashrc
  source <(kubectl-grayscale completion zsh)           # zsh
  kubectl-grayscale completion fish | source           # fish
  kubectl-grayscale completion powershell | Out-String | Invoke-Expression

For `kubectl grayscale <TAB>` (kubectl 1.26+ with kubectl's own completion loaded), put an executable
named kubectl_complete-grayscale on PATH that runs `kubectl-grayscale __complete \"$@\"`, or a symlink
to kubectl-grayscale with that name.")]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub async fn run(_ctx: &Context, args: CompletionArgs) -> Result<()> {
    let name = match args.shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
        Shell::Powershell => "powershell",
    };
    print(crate::complete::script(name).expect("every shell has a script"));
    Ok(())
}
