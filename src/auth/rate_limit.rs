//! Per-caller token buckets: a burst is served, a flood gets 429.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::config::RateLimitSettings;

/// Callers tracked before idle buckets are swept (bounds memory when
/// anonymous callers are keyed by address).
const SWEEP_ABOVE: usize = 10_000;

pub struct RateLimiter {
    settings: RateLimitSettings,
    buckets: DashMap<Arc<str>, Mutex<Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> RateLimiter {
        RateLimiter {
            settings,
            buckets: DashMap::new(),
        }
    }

    /// Takes one token for `caller`; when none is left, how long until one is.
    pub fn take(&self, caller: &str) -> Result<(), Duration> {
        let now = Instant::now();
        match self.buckets.get(caller) {
            Some(bucket) => {
                self.take_from(&mut bucket.lock().unwrap_or_else(|p| p.into_inner()), now)
            }
            None => {
                self.sweep_if_full(now);
                let mut bucket = Bucket {
                    tokens: f64::from(self.settings.burst),
                    refilled: now,
                };
                let taken = self.take_from(&mut bucket, now);
                self.buckets.insert(Arc::from(caller), Mutex::new(bucket));
                taken
            }
        }
    }

    fn take_from(&self, bucket: &mut Bucket, now: Instant) -> Result<(), Duration> {
        let rate = self.settings.requests_per_second;
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(f64::from(self.settings.burst));
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Drops buckets that would be full again (no different from new ones)
    /// once many callers are tracked.
    fn sweep_if_full(&self, now: Instant) {
        if self.buckets.len() < SWEEP_ABOVE {
            return;
        }
        let full_after = Duration::from_secs_f64(
            f64::from(self.settings.burst) / self.settings.requests_per_second,
        );
        self.buckets.retain(|_, b| {
            let b = b.get_mut().unwrap_or_else(|p| p.into_inner());
            now.duration_since(b.refilled) < full_after
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_served_then_refused_per_caller() {
        let limiter = RateLimiter::new(RateLimitSettings {
            requests_per_second: 1.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert!(limiter.take("alice").is_ok());
        }
        let wait = limiter.take("alice").unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        // Another caller has a bucket of its own.
        assert!(limiter.take("bob").is_ok());
    }
}
