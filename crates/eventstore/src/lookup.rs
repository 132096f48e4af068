//! Finding streams by a sealed value without storing the value in clear.
//!
//! A lookup tag is an HMAC-SHA-256 of a value and its purpose under the lookup key, a random key
//! kept in `lookup_keys` wrapped by the master key (rewrapped by a rotation, like the data
//! keys). The caller computes a stream's tags ([`EventStore::lookup_tag`]) and hands them to the
//! append that records the value ([`crate::AppendRequest::lookups`],
//! [`crate::NewStream::lookups`]); they are written in the append's own statement, and the
//! erasure's statement deletes them with the data key. [`EventStore::streams_tagged`] finds the
//! streams carrying a tag. The store knows nothing of what a tag is of.

use hmac::{KeyInit, Mac};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{EventStore, Protection, StoreError, Tagged};

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The name of the lookup key in `lookup_keys`.
const LOOKUP_KEY: &str = "lookup-v1";

const KEY_SQL: &str = "SELECT wrapped_key, master_key_id FROM lookup_keys WHERE name = $1";

impl EventStore {
    /// The lookup tag of `value` for `purpose` (which says what the value is and whose: a
    /// caller puts the organisation in it so that a tag of one organisation's finds nothing of
    /// another's). `None` when this store seals nothing (no master key): nothing is tagged then.
    ///
    /// # Errors
    /// [`StoreError::Protection`] when the lookup key does not unwrap with the master key; a
    /// database failure.
    pub async fn lookup_tag(
        &self,
        purpose: &str,
        value: &str,
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let Some(protection) = self.protection.as_deref() else {
            return Ok(None);
        };
        let key = self
            .lookup_key
            .get_or_try_init(|| lookup_key(&self.pool, protection))
            .await?;
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.as_slice())
            .map_err(|_| StoreError::Protection("a lookup key of the wrong length".to_owned()))?;
        mac.update(b"casebook-lookup-v1\0");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        Ok(Some(mac.finalize().into_bytes().into()))
    }

    /// The streams carrying `tag` now, in id order.
    ///
    /// # Errors
    /// A database failure.
    pub async fn streams_tagged(&self, tag: &[u8; 32]) -> Result<Vec<Uuid>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT stream_id FROM stream_lookups WHERE tag = $1 ORDER BY stream_id",
            )
            .await?;
        let rows = client.query(&statement, &[&tag.as_slice()]).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Those of `tags` that more than one stream carries now, in one statement.
    ///
    /// # Errors
    /// A database failure.
    pub async fn tags_on_more_than_one(
        &self,
        tags: &[[u8; 32]],
    ) -> Result<std::collections::HashSet<[u8; 32]>, StoreError> {
        if tags.is_empty() {
            return Ok(Default::default());
        }
        let tags: Vec<&[u8]> = tags.iter().map(|tag| tag.as_slice()).collect();
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT tag FROM stream_lookups WHERE tag = ANY($1) \
                 GROUP BY tag HAVING count(*) > 1",
            )
            .await?;
        let rows = client.query(&statement, &[&tags]).await?;
        Ok(rows
            .iter()
            .filter_map(|row| <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).ok())
            .collect())
    }

    /// The streams carrying `tag` now (and those carrying `also`, if asked), in id order, and
    /// the latest generation of `claim`, read together (one statement, one snapshot): an append
    /// that makes the claim's next generation ([`crate::Claim`]) is written only if no other
    /// append claimed it since, and so only if what was found here still stands for the value
    /// claimed.
    ///
    /// # Errors
    /// A database failure.
    pub async fn tagged_and_claimed(
        &self,
        tag: &[u8; 32],
        also: Option<&[u8; 32]>,
        claim: Uuid,
    ) -> Result<Tagged, StoreError> {
        let client = self.pool.get().await?;
        // Each tag its own index look-up (a join of the tags with the table is planned, before
        // the tags are known, as a scan of the whole table).
        let statement = client
            .prepare_cached(
                "SELECT (SELECT coalesce(max(generation), 0) FROM lookup_claims \
                         WHERE claim_id = $2), \
                 ARRAY(SELECT stream_id FROM stream_lookups WHERE tag = $1 ORDER BY stream_id), \
                 ARRAY(SELECT stream_id FROM stream_lookups WHERE tag = $3 ORDER BY stream_id)",
            )
            .await?;
        let also = also.map(<[u8; 32]>::as_slice);
        let row = client
            .query_one(&statement, &[&tag.as_slice(), &claim, &also])
            .await?;
        Ok(Tagged {
            generation: row.get(0),
            streams: row.get(1),
            also: row.get(2),
        })
    }
}

/// The lookup key, made and stored (wrapped) the first time it is needed; a racing first use
/// finds the key that won.
async fn lookup_key(
    pool: &db::Pool,
    protection: &Protection,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let client = pool.get().await?;
    if let Some(row) = client.query_opt(KEY_SQL, &[&LOOKUP_KEY]).await? {
        let wrapped: Vec<u8> = row.get(0);
        let master_id: String = row.get(1);
        return protection.open_lookup_key(LOOKUP_KEY, &wrapped, &master_id);
    }
    let (_, wrapped) = protection.new_lookup_key(LOOKUP_KEY)?;
    client
        .execute(
            "INSERT INTO lookup_keys (name, wrapped_key, master_key_id) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
            &[&LOOKUP_KEY, &wrapped, &protection.master_key_id()],
        )
        .await?;
    let row = client.query_one(KEY_SQL, &[&LOOKUP_KEY]).await?;
    let wrapped: Vec<u8> = row.get(0);
    let master_id: String = row.get(1);
    protection.open_lookup_key(LOOKUP_KEY, &wrapped, &master_id)
}
