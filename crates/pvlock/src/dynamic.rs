//! `DynMutex`: algorithm and backend chosen once per process (being written).
/// Placeholder.
pub type RawDynMutex = crate::queued::Queued<crate::backend::Auto>;
/// Placeholder.
pub type DynMutex<T> = lock_api::Mutex<RawDynMutex, T>;
