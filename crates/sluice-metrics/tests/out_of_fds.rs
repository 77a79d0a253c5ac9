//! `process_open_fds` while the process is out of file descriptors: it
//! must read the limit, not the last count it could read before. (Its own
//! test binary: it lowers this process's descriptor limit.)

#[test]
fn open_fds_reads_the_limit_when_every_descriptor_is_taken() {
    let metrics = sluice_metrics::Metrics::new().unwrap();
    let before = sample(&metrics.render(), "process_open_fds");
    assert!(before > 0.0);

    let limit: u64 = 64;
    // Descriptors the process inherited above the limit (a runner's pipe,
    // say) stay open and count, but take none of the slots below it.
    let above_limit = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|&fd| fd >= limit)
        .count() as f64;
    let lowered = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
    }
    let text = metrics.render();
    assert_eq!(sample(&text, "process_max_fds"), limit as f64, "{text}");
    assert_eq!(
        sample(&text, "process_open_fds"),
        limit as f64 + above_limit,
        "{text}"
    );
    drop(held);
    let after = sample(&metrics.render(), "process_open_fds");
    assert!(after < limit as f64 - 10.0, "{after}");
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}
