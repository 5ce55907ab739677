//! A per-process cache with a time to live and single-flight loads: concurrent misses of one key
//! wait for one load instead of each issuing their own (a burst of events for one tenant costs
//! one Query per TTL).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    /// When each value was loaded, and the value.
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// One load at a time per key (an entry lives while someone holds or waits for it).
    loading: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()), loading: Mutex::new(HashMap::new()) }
    }

    fn fresh(&self, key: &K, good: &impl Fn(&V) -> bool) -> Option<V> {
        let entries = self.entries.lock().unwrap();
        let (at, v) = entries.get(key)?;
        (at.elapsed() < self.ttl && good(v)).then(|| v.clone())
    }

    /// The cached value if younger than the TTL and `good`, else `load`'s (cached when `keep`
    /// says so). With a zero TTL every call loads.
    pub async fn get<E, F, Fut>(&self, key: &K, good: impl Fn(&V) -> bool, keep: impl Fn(&V) -> bool, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.ttl.is_zero() {
            return load().await;
        }
        if let Some(v) = self.fresh(key, &good) {
            return Ok(v);
        }
        let gate = self.loading.lock().unwrap().entry(key.clone()).or_default().clone();
        let result = {
            let _turn = gate.lock().await;
            match self.fresh(key, &good) {
                Some(v) => Ok(v), // loaded while this one waited
                None => {
                    let loaded = load().await;
                    if let Ok(v) = &loaded {
                        if keep(v) {
                            let mut entries = self.entries.lock().unwrap();
                            // Expired entries go when new ones come: a warm process holds at most a TTL's worth.
                            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
                            entries.insert(key.clone(), (Instant::now(), v.clone()));
                        }
                    }
                    loaded
                }
            }
        };
        let mut loading = self.loading.lock().unwrap();
        drop(gate);
        loading.retain(|_, g| Arc::strong_count(g) > 1);
        result
    }

    /// Replaces a key's value with one the caller knows to be newer (a write it made itself).
    pub fn put(&self, key: &K, v: V) {
        if !self.ttl.is_zero() {
            self.entries.lock().unwrap().insert(key.clone(), (Instant::now(), v));
        }
    }

    /// Gates still held (tests: none outlives its load).
    pub fn loads_in_flight(&self) -> usize {
        self.loading.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn slow_load(n: &AtomicUsize, v: u32) -> Result<u32, ()> {
        n.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(v)
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_key_load_once() {
        // GIVEN a cold cache and a slow loader
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        let loads = AtomicUsize::new(0);
        // WHEN ten asks for one key and one for another come at once
        let keys: Vec<&str> = (0..10).map(|_| "acme").chain(["other"]).collect();
        let asks = keys.iter().map(|k| cache.get(k, |_| true, |_| true, || slow_load(&loads, 7)));
        let got = futures::future::join_all(asks).await;
        // THEN each key was loaded once, and everyone got the value
        assert!(got.iter().all(|v| *v == Ok(7)));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert_eq!(cache.loads_in_flight(), 0, "no gate outlives its load");
        // AND a value that is not good enough (e.g. an older version) is loaded again
        assert_eq!(cache.get(&"acme", |v| *v > 7, |_| true, || slow_load(&loads, 8)).await, Ok(8));
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        // AND with no TTL nothing is shared
        let uncached: TtlCache<&str, u32> = TtlCache::new(Duration::ZERO);
        futures::future::join_all((0..3).map(|_| uncached.get(&"acme", |_| true, |_| true, || slow_load(&loads, 1)))).await;
        assert_eq!(loads.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn values_not_kept_are_loaded_each_time() {
        let cache: TtlCache<&str, Option<u32>> = TtlCache::new(Duration::from_secs(60));
        let loads = AtomicUsize::new(0);
        for _ in 0..2 {
            let v = cache.get(&"new-tenant", |_| true, Option::is_some, || async { loads.fetch_add(1, Ordering::SeqCst); Ok::<_, ()>(None) }).await;
            assert_eq!(v, Ok(None));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 2, "an unknown tenant is not remembered");
    }
}
