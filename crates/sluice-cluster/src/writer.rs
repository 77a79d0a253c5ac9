//! Which fit backend is the writer.

/// The writer after a round of probes: the current one while it stays fit
/// (no fail-back unless `fail_back`), else the first fit backend in
/// configuration order; `None` when none is fit. With `fail_back`, a fit
/// backend listed before the current writer takes over.
pub fn choose_writer(fit: &[bool], current: Option<usize>, fail_back: bool) -> Option<usize> {
    let first = fit.iter().position(|&ok| ok);
    match current {
        Some(writer) if fit.get(writer) == Some(&true) => {
            if fail_back {
                first
            } else {
                Some(writer)
            }
        }
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fit_backend_is_chosen() {
        assert_eq!(choose_writer(&[true, true], None, false), Some(0));
        assert_eq!(choose_writer(&[false, true, true], None, false), Some(1));
        assert_eq!(choose_writer(&[false, false], None, false), None);
        assert_eq!(choose_writer(&[], None, false), None);
    }

    #[test]
    fn a_fit_writer_stays_without_fail_back() {
        assert_eq!(choose_writer(&[true, true], Some(1), false), Some(1));
    }

    #[test]
    fn with_fail_back_an_earlier_backend_takes_over() {
        assert_eq!(choose_writer(&[true, true], Some(1), true), Some(0));
        assert_eq!(choose_writer(&[false, true], Some(1), true), Some(1));
    }

    #[test]
    fn an_unfit_writer_is_replaced() {
        assert_eq!(choose_writer(&[true, false, true], Some(1), false), Some(0));
        assert_eq!(
            choose_writer(&[false, false, true], Some(0), false),
            Some(2)
        );
        assert_eq!(choose_writer(&[false, false], Some(0), false), None);
        assert_eq!(
            choose_writer(&[true], Some(5), false),
            Some(0),
            "out of range"
        );
    }
}
