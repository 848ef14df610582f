//! A Redis ACL user on the machine's Redis ([`crate::redis_url`]) allowed every command but
//! one, as a managed Redis's ACL may leave out `INFO` (`@dangerous`). Creates and deletes
//! only its own user, under a random `wa-test-` name; touches no key.

use std::hash::{BuildHasher, RandomState};

use crate::redis_url;

/// The password of every such user: distinctive, so a test can tell it never leaked.
pub const ACL_TEST_PASSWORD: &str = "wa-acl-test-password-5d1c";

/// The user; deleted when dropped, even after a panic.
pub struct RedisUserWithout {
    name: String,
}

impl RedisUserWithout {
    /// A user with password [`ACL_TEST_PASSWORD`] that may run everything on every key but
    /// `command`.
    ///
    /// # Panics
    ///
    /// When Redis refuses `ACL SETUSER` (a test setup failure).
    pub async fn create(command: &str) -> Self {
        let name = format!("wa-test-{:016x}", RandomState::new().hash_one(command));
        let mut admin = redis::Client::open(redis_url())
            .expect("REDIS_URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to REDIS_URL");
        let () = redis::cmd("ACL")
            .arg(&["SETUSER", &name, "on", "~*", "+@all"])
            .arg(format!(">{ACL_TEST_PASSWORD}"))
            .arg(format!("-{command}"))
            .query_async(&mut admin)
            .await
            .expect("ACL SETUSER");
        Self { name }
    }

    /// [`crate::redis_url`] signed in as this user (`redis://` or `rediss://`, without
    /// credentials of its own).
    pub fn url(&self) -> String {
        let url = redis_url();
        let (scheme, rest) = url.split_once("://").expect("REDIS_URL has a scheme");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}:{ACL_TEST_PASSWORD}@{host}", self.name)
    }
}

impl Drop for RedisUserWithout {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A blocking connection on its own thread: drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let mut conn = redis::Client::open(redis_url())?.get_connection()?;
            redis::cmd("ACL")
                .arg(&["DELUSER", &name])
                .query::<u64>(&mut conn)
        })
        .join();
    }
}
