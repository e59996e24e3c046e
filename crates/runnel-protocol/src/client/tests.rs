use std::time::Duration;

use super::RetryPolicy;

#[test]
fn backoff_doubles_within_jitter_and_stays_under_the_cap() {
    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };
    // retry number -> the un-jittered delay; the jittered one lies in [base/2, base].
    let table = [
        (1, 100),
        (2, 200),
        (3, 400),
        (4, 800),
        (5, 1000),
        (40, 1000),
    ];
    for (retry, base_ms) in table {
        let base = Duration::from_millis(base_ms);
        for _ in 0..50 {
            let delay = policy.backoff(retry);
            assert!(
                delay >= base / 2 && delay <= base,
                "retry {retry}: {delay:?} not in [{:?}, {base:?}]",
                base / 2
            );
        }
    }
}
