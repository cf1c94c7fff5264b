//! Password hashing and checks (argon2id, deliberately slow and memory-hungry) off the
//! async threads, at most one per CPU at a time: a burst of logins queues instead of
//! spawning a blocking thread (and a malloc arena, and argon2's memory) per login.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    )
});

/// Whether `password` matches the argon2 `hash`.
pub async fn verify(hash: String, password: String) -> bool {
    let Ok(_slot) = SLOTS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || sluice_core::secret::verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

/// An argon2id hash of `password`; None if hashing failed.
pub async fn hash(password: String) -> Option<String> {
    let _slot = SLOTS.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || sluice_core::secret::hash_password(&password).ok())
        .await
        .ok()
        .flatten()
}
