//! The output settings every command shares, a value decided once from the global flags and
//! passed: verbosity (`-q`, `-v`, `-vv`) and color (`--color auto|always|never`, NO_COLOR,
//! CLICOLOR_FORCE).

use std::ffi::OsString;
use std::io::IsTerminal;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color when the stream is a terminal, NO_COLOR is unset and CLICOLOR_FORCE does not force it.
    #[default]
    Auto,
    Always,
    Never,
}

/// The run's output settings, built once from the global flags (`GlobalArgs::output`) and
/// passed to whatever prints: how much to print (-1 with `-q`, 0 by default, 1 with `-v`, 2
/// with `-vv`) and the color choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub verbosity: i8,
    pub color: ColorChoice,
}

impl Settings {
    /// The settings of `-q`, `-v`/`-vv` and `--color`.
    pub fn new(quiet: bool, verbose: u8, color: ColorChoice) -> Settings {
        let verbosity = if quiet { -1 } else { verbose.min(2) as i8 };
        Settings { verbosity, color }
    }

    /// `-q`: only errors and the summary.
    pub fn quiet(&self) -> bool {
        self.verbosity < 0
    }

    /// Whether to color `stream`, by these settings and the environment.
    pub fn color_for(&self, stream: &impl IsTerminal) -> bool {
        decide_color(self.color, stream.is_terminal(), std::env::var_os("NO_COLOR"), std::env::var_os("CLICOLOR_FORCE"))
    }
}

/// The color rule (no-color.org, bixense.com/clicolors): `always`/`never` win; under `auto`,
/// a non-empty NO_COLOR turns color off, then a CLICOLOR_FORCE other than empty or `0` turns
/// it on, else color only on a terminal.
pub fn decide_color(
    choice: ColorChoice,
    tty: bool,
    no_color: Option<OsString>,
    clicolor_force: Option<OsString>,
) -> bool {
    let set = |v: &Option<OsString>| v.as_ref().is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set(&no_color) => false,
        ColorChoice::Auto if set(&clicolor_force) && clicolor_force.as_deref() != Some("0".as_ref()) => true,
        ColorChoice::Auto => tty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_rule_table() {
        use ColorChoice::*;
        let s = |v: &str| Some(OsString::from(v));
        // (choice, tty, NO_COLOR, CLICOLOR_FORCE) -> color
        let cases = [
            (Auto, true, None, None, true),
            (Auto, false, None, None, false),
            (Auto, true, s("1"), None, false),
            (Auto, true, s(""), None, true),
            (Auto, false, None, s("1"), true),
            (Auto, false, None, s("0"), false),
            (Auto, false, None, s(""), false),
            (Auto, false, s("1"), s("1"), false),
            (Always, false, s("1"), None, true),
            (Never, true, None, s("1"), false),
        ];
        for (choice, tty, no_color, force, want) in cases {
            assert_eq!(
                decide_color(choice, tty, no_color.clone(), force.clone()),
                want,
                "{choice:?} tty={tty} NO_COLOR={no_color:?} CLICOLOR_FORCE={force:?}"
            );
        }
    }
}
