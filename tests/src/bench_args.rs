//! The bench binaries' command lines (`avs-api-bench`, `avs-pair-bench`, `avs-soak`): numbers
//! by position, each with a default, so a bench runs with no arguments at all. A word that does
//! not parse counts as absent: the benches are tools for a person at a terminal, and the report
//! they print names the numbers that ran.

use std::str::FromStr;

/// The `index`-th (from 0) positional argument as a `T`, or `default` when it is missing or
/// does not parse.
pub fn positional<T: FromStr>(args: &[String], index: usize, default: T) -> T {
    args.get(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn a_missing_or_unparsable_word_gives_the_default() {
        let args = vec!["7".to_owned(), "many".to_owned()];
        assert_eq!(positional(&args, 0, 50usize), 7);
        assert_eq!(positional(&args, 1, 16usize), 16);
        assert_eq!(positional(&args, 2, 3u64), 3);
    }
}
