//! Personal data at rest: field encryption per data subject, and crypto-shredding.
//!
//! A [`Protection`] names, per stream type and event type, the payload fields that hold personal
//! data. On append each such field's value is replaced by `{"$sealed": "<base64>"}`: the value's
//! JSON encrypted with XChaCha20-Poly1305 under the stream's own data key, bound by its
//! associated data to the stream, the event and the field, so a sealed value cannot be moved to
//! another record. Data keys live in `subject_keys`, wrapped by the master key, which never
//! reaches the database. The hash chain covers the sealed payload, so destroying a key (setting
//! its row's `wrapped_key` to NULL, in the same statement as the erasure event) leaves every
//! chain intact while making every copy of the fields unreadable: the log, WAL, replicas and
//! backups alike.
//!
//! Some fields are personal because of another event: a correction's corrected fields are
//! personal where the entry it corrects has personal fields. The caller names those per event
//! ([`crate::NewEvent::personal_paths`]), inside a part of the payload the protection opens
//! wherever a field is sealed ([`Protection::sealed_within`]), so reading needs no list.
//!
//! Reads of one stream ([`crate::EventStore::read_stream`]) open sealed fields when the key
//! exists and show the field's erased form when it does not. Reads of the global log
//! ([`crate::EventStore::read_all`], what projectors use) never open them: projectors only ever
//! see the erased form, so no read model can copy personal data.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::secret::{KeyKind, SecretKey};
use crate::{NewEvent, StoreError};

/// The key under which a sealed field is stored.
pub const SEALED: &str = "$sealed";

const NONCE_LEN: usize = 24;
const DEK_AAD: &[u8] = b"casebook-data-key-v1";
const FIELD_AAD: &[u8] = b"casebook-field-v1";
const LOOKUP_AAD: &[u8] = b"casebook-lookup-key-v1";

/// The key that wraps every data key. It comes from configuration and is never stored in the
/// database; its [`SecretKey::id`] is, beside each data key it wrapped.
pub type MasterKey = SecretKey<Master>;

/// The master key's kind.
pub enum Master {}

impl KeyKind for Master {
    const NAME: &'static str = "master key";
    const HINT: &'static str = " (make one with `casebook key generate`)";
    const ID_LABEL: &'static [u8] = b"casebook-master-key-id";
}

impl MasterKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.bytes()).into())
    }

    /// `subject`'s data key wrapped by this master key, bound to the subject.
    fn wrap(&self, subject: Uuid, key: &DataKey) -> Result<Vec<u8>, StoreError> {
        seal_bytes(&self.cipher(), key.0.as_slice(), &dek_aad(subject))
    }

    /// `subject`'s data key, unwrapped.
    ///
    /// # Errors
    /// [`StoreError::Protection`] when it was not wrapped by this master key for this subject.
    fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        let bytes = Zeroizing::new(
            open_bytes(&self.cipher(), wrapped, &dek_aad(subject)).ok_or_else(|| {
                StoreError::Protection(format!(
                    "the data key of {subject} does not unwrap with master key {}",
                    self.id()
                ))
            })?,
        );
        let array: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Protection("a data key is not 32 bytes".to_owned()))?;
        Ok(DataKey(Zeroizing::new(array)))
    }
}

/// Rewraps every live data key wrapped by `old` under `new`, in one transaction (as the owner:
/// the service's role may not change a key's master key). Destroyed keys stay destroyed.
/// Returns how many keys were rewrapped.
///
/// # Errors
/// [`StoreError::Protection`] when a key does not unwrap with `old` (nothing changes then);
/// a database failure.
pub async fn rotate_master_key(
    owner: &mut tokio_postgres::Client,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<u64, StoreError> {
    let tx = owner.transaction().await?;
    let rows = tx
        .query(
            "SELECT subject_id, wrapped_key FROM subject_keys \
             WHERE wrapped_key IS NOT NULL AND master_key_id = $1 FOR UPDATE",
            &[&old.id()],
        )
        .await?;
    let update = tx
        .prepare(
            "UPDATE subject_keys SET wrapped_key = $2, master_key_id = $3 WHERE subject_id = $1",
        )
        .await?;
    let mut rewrapped = 0;
    for row in &rows {
        let subject: Uuid = row.get(0);
        let wrapped: Vec<u8> = row.get(1);
        let again = new.wrap(subject, &old.unwrap(subject, &wrapped)?)?;
        rewrapped += tx.execute(&update, &[&subject, &again, &new.id()]).await?;
    }
    // The lookup keys too (`crate::EventStore::lookup_tag`): the same keys, so every tag
    // written stays valid.
    let lookup_keys = tx
        .query(
            "SELECT name, wrapped_key FROM lookup_keys WHERE master_key_id = $1 FOR UPDATE",
            &[&old.id()],
        )
        .await?;
    for row in &lookup_keys {
        let name: String = row.get(0);
        let wrapped: Vec<u8> = row.get(1);
        let key = Zeroizing::new(
            open_bytes(&old.cipher(), &wrapped, &lookup_aad(&name)).ok_or_else(|| {
                StoreError::Protection(format!(
                    "the lookup key {name} does not unwrap with master key {}",
                    old.id()
                ))
            })?,
        );
        let again = seal_bytes(&new.cipher(), &key, &lookup_aad(&name))?;
        tx.execute(
            "UPDATE lookup_keys SET wrapped_key = $2, master_key_id = $3 WHERE name = $1",
            &[&name, &again, &new.id()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(rewrapped)
}

/// A data subject's own key, unwrapped. Zeroed when dropped.
pub(crate) struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    fn generate() -> Result<DataKey, StoreError> {
        Ok(DataKey(random::<32>()?))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }
}

/// `N` random bytes from the operating system, zeroed when dropped.
fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, StoreError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|e| StoreError::Protection(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn seal_bytes(cipher: &XChaCha20Poly1305, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    let nonce_bytes = *random::<NONCE_LEN>()?;
    let sealed = cipher
        .encrypt(&XNonce::from(nonce_bytes), Payload { msg, aad })
        .map_err(|_| StoreError::Protection("encryption failed".to_owned()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_bytes(cipher: &XChaCha20Poly1305, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce_bytes.try_into().ok()?;
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: body, aad })
        .ok()
}

fn lookup_aad(name: &str) -> Vec<u8> {
    [LOOKUP_AAD, name.as_bytes()].concat()
}

fn dek_aad(subject: Uuid) -> Vec<u8> {
    [DEK_AAD, subject.as_bytes()].concat()
}

fn field_aad(subject: Uuid, event_id: Uuid, path: &str) -> Vec<u8> {
    [
        FIELD_AAD,
        subject.as_bytes(),
        event_id.as_bytes(),
        path.as_bytes(),
    ]
    .concat()
}

/// One personal field: where it is in an event's payload and what shows in its place once it
/// cannot be read.
#[derive(Clone, Debug)]
struct Field {
    path: Vec<String>,
    dotted: String,
    erased: Value,
}

/// A part of an event's payload in which the caller names the personal paths per event, and
/// which is opened wherever a field is sealed.
#[derive(Clone, Debug)]
struct Within {
    path: Vec<String>,
    dotted: String,
    /// The erased form of a sealed field at a dotted path inside it.
    erased: fn(&str) -> Value,
}

/// Which fields of which events are personal data, and the master key that protects them.
#[derive(Clone, Debug)]
pub struct Protection {
    master: MasterKey,
    /// Stream type, then event type: looked up by `&str` on every event read.
    fields: HashMap<String, HashMap<String, Vec<Field>>>,
    /// Stream type, then event type: where an event's own personal paths may lie.
    within: HashMap<String, HashMap<String, Vec<Within>>>,
}

/// What a stream's key row says.
pub(crate) enum KeyState {
    /// No key was ever made: the stream holds no sealed field.
    Absent,
    /// The key was destroyed: sealed fields show as erased.
    Destroyed,
    /// The key, unwrapped.
    Live(DataKey),
}

impl Protection {
    /// Protection under `master` of the fields named by `(stream type, event type, dotted path,
    /// erased form)`; a path walks into objects (`referrer.name`).
    pub fn new<'a>(
        master: MasterKey,
        fields: impl IntoIterator<Item = (&'a str, &'a str, &'a str, Value)>,
    ) -> Protection {
        let mut map: HashMap<String, HashMap<String, Vec<Field>>> = HashMap::new();
        for (stream_type, event_type, path, erased) in fields {
            let field = Field {
                path: path.split('.').map(str::to_owned).collect(),
                dotted: path.to_owned(),
                erased,
            };
            add_for(&mut map, stream_type, event_type, field);
        }
        Protection {
            master,
            fields: map,
            within: HashMap::new(),
        }
    }

    /// Also protects, in events of `event_type` on `stream_type` streams, the paths inside
    /// `path` that each appended event names as personal ([`crate::NewEvent::personal_paths`]).
    /// Every sealed value found inside it opens on read, bound to its own path; without the key
    /// it shows as `erased(dotted path)`.
    pub fn sealed_within(
        mut self,
        stream_type: &str,
        event_type: &str,
        path: &str,
        erased: fn(&str) -> Value,
    ) -> Protection {
        let within = Within {
            path: path.split('.').map(str::to_owned).collect(),
            dotted: path.to_owned(),
            erased,
        };
        add_for(&mut self.within, stream_type, event_type, within);
        self
    }

    /// The master key's public id.
    pub fn master_key_id(&self) -> &str {
        self.master.id()
    }

    /// Whether events of `event_type` on `stream_type` streams can hold a sealed value (a
    /// personal field, or a path inside which each event names its own): one that cannot is
    /// read as stored.
    pub(crate) fn may_seal(&self, stream_type: &str, event_type: &str) -> bool {
        !self.fields_of(stream_type, event_type).is_empty()
            || !self.within_of(stream_type, event_type).is_empty()
    }

    fn fields_of(&self, stream_type: &str, event_type: &str) -> &[Field] {
        self.fields
            .get(stream_type)
            .and_then(|types| types.get(event_type))
            .map_or(&[], Vec::as_slice)
    }

    fn within_of(&self, stream_type: &str, event_type: &str) -> &[Within] {
        self.within
            .get(stream_type)
            .and_then(|types| types.get(event_type))
            .map_or(&[], Vec::as_slice)
    }

    /// Every path to seal in an event: its type's personal fields and the event's own paths.
    fn paths_to_seal<'a>(
        &'a self,
        stream_type: &str,
        event_type: &str,
        own: &'a [String],
    ) -> impl Iterator<Item = (Vec<String>, &'a str)> {
        self.fields_of(stream_type, event_type)
            .iter()
            .map(|field| (field.path.clone(), field.dotted.as_str()))
            .chain(own.iter().map(|dotted| {
                (
                    dotted.split('.').map(str::to_owned).collect(),
                    dotted.as_str(),
                )
            }))
    }

    /// Whether any of these payloads (with their own personal paths) has a personal field with
    /// a value to seal.
    pub(crate) fn needs_key<'a>(
        &self,
        stream_type: &str,
        events: impl IntoIterator<Item = (&'a str, &'a Value, &'a [String])>,
    ) -> bool {
        events.into_iter().any(|(event_type, payload, own)| {
            self.paths_to_seal(stream_type, event_type, own)
                .any(|(path, _)| get(payload, &path).is_some_and(|v| !v.is_null()))
        })
    }

    /// A fresh data key for `subject`, and its wrapped form for `subject_keys`.
    pub(crate) fn new_key(&self, subject: Uuid) -> Result<(DataKey, Vec<u8>), StoreError> {
        let key = DataKey::generate()?;
        let wrapped = self.master.wrap(subject, &key)?;
        Ok((key, wrapped))
    }

    /// A fresh lookup key named `name`, and its wrapped form for `lookup_keys`.
    pub(crate) fn new_lookup_key(
        &self,
        name: &str,
    ) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>), StoreError> {
        let key = random::<32>()?;
        let wrapped = seal_bytes(&self.master.cipher(), key.as_slice(), &lookup_aad(name))?;
        Ok((key, wrapped))
    }

    /// The lookup key named `name` from its row of `lookup_keys`, unwrapped.
    ///
    /// # Errors
    /// [`StoreError::Protection`] when it was wrapped by another master key or does not unwrap.
    pub(crate) fn open_lookup_key(
        &self,
        name: &str,
        wrapped: &[u8],
        master_id: &str,
    ) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        let refused = || {
            StoreError::Protection(format!(
                "the lookup key {name} was wrapped by master key {master_id}, and does not \
                 unwrap with the configured master key {}",
                self.master.id()
            ))
        };
        if master_id != self.master.id() {
            return Err(refused());
        }
        let bytes = Zeroizing::new(
            open_bytes(&self.master.cipher(), wrapped, &lookup_aad(name)).ok_or_else(refused)?,
        );
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| refused())?;
        Ok(Zeroizing::new(array))
    }

    /// The key row's contents, unwrapped.
    ///
    /// # Errors
    /// [`StoreError::Protection`] when the key was wrapped by another master key or does not
    /// unwrap (the configured master key is not the one the data was written with).
    pub(crate) fn key_state(
        &self,
        subject: Uuid,
        row: Option<(Option<Vec<u8>>, String)>,
    ) -> Result<KeyState, StoreError> {
        let Some((wrapped, master_id)) = row else {
            return Ok(KeyState::Absent);
        };
        let Some(wrapped) = wrapped else {
            return Ok(KeyState::Destroyed);
        };
        if master_id != self.master.id() {
            return Err(StoreError::Protection(format!(
                "the data keys were wrapped by master key {master_id}, but the configured master \
                 key is {}",
                self.master.id()
            )));
        }
        Ok(KeyState::Live(self.master.unwrap(subject, &wrapped)?))
    }

    /// Replaces every personal field of `event` with a value (in `payload`, the event's payload
    /// as it will be stored) by its sealed form: the type's fields and the event's own personal
    /// paths.
    ///
    /// # Errors
    /// [`StoreError::Protection`] for an own path outside every part of the payload that is
    /// opened wherever a field is sealed (it could never be read again).
    pub(crate) fn seal(
        &self,
        key: &DataKey,
        subject: Uuid,
        stream_type: &str,
        event: &NewEvent,
        payload: &mut Value,
    ) -> Result<(), StoreError> {
        let (event_type, event_id) = (event.event_type.as_str(), event.event_id);
        let own = event.personal_paths.as_slice();
        let within = self.within_of(stream_type, event_type);
        if let Some(outside) = own.iter().find(|path| {
            !within.iter().any(|w| {
                path.strip_prefix(w.dotted.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
        }) {
            return Err(StoreError::Protection(format!(
                "{event_type}.{outside} is not where a {event_type} may hold personal fields of \
                 its own"
            )));
        }
        let cipher = key.cipher();
        for (path, dotted) in self.paths_to_seal(stream_type, event_type, own) {
            let Some(value) = get_mut(payload, &path) else {
                continue;
            };
            if value.is_null() || is_sealed(value) {
                continue;
            }
            let plain = Zeroizing::new(
                serde_json::to_vec(value).map_err(|e| StoreError::Protection(e.to_string()))?,
            );
            let sealed = seal_bytes(&cipher, &plain, &field_aad(subject, event_id, dotted))?;
            let mut object = Map::new();
            object.insert(SEALED.to_owned(), Value::String(STANDARD.encode(sealed)));
            *value = Value::Object(object);
        }
        Ok(())
    }

    /// Opens every sealed field with `key`, or (without a key, or where it does not open) puts
    /// the field's erased form in its place.
    pub(crate) fn open(
        &self,
        key: Option<&DataKey>,
        subject: Uuid,
        stream_type: &str,
        event_type: &str,
        event_id: Uuid,
        payload: &mut Value,
    ) {
        let cipher = key.map(DataKey::cipher);
        for field in self.fields_of(stream_type, event_type) {
            let Some(value) = get_mut(payload, &field.path) else {
                continue;
            };
            let Some(sealed) = sealed_text(value) else {
                continue;
            };
            let opened = cipher.as_ref().and_then(|cipher| {
                let bytes = STANDARD.decode(sealed).ok()?;
                let plain = Zeroizing::new(open_bytes(
                    cipher,
                    &bytes,
                    &field_aad(subject, event_id, &field.dotted),
                )?);
                serde_json::from_slice::<Value>(&plain).ok()
            });
            *value = opened.unwrap_or_else(|| field.erased.clone());
        }
        for within in self.within_of(stream_type, event_type) {
            if let Some(value) = get_mut(payload, &within.path) {
                open_inside(
                    cipher.as_ref(),
                    subject,
                    event_id,
                    within,
                    within.dotted.clone(),
                    value,
                );
            }
        }
    }
}

/// Opens every sealed value at or inside `value` (at dotted path `dotted`), bound to its own
/// path, or puts its erased form in its place.
fn open_inside(
    cipher: Option<&XChaCha20Poly1305>,
    subject: Uuid,
    event_id: Uuid,
    within: &Within,
    dotted: String,
    value: &mut Value,
) {
    if let Some(sealed) = sealed_text(value) {
        let opened = cipher.and_then(|cipher| {
            let bytes = STANDARD.decode(sealed).ok()?;
            let plain = Zeroizing::new(open_bytes(
                cipher,
                &bytes,
                &field_aad(subject, event_id, &dotted),
            )?);
            serde_json::from_slice::<Value>(&plain).ok()
        });
        *value = opened.unwrap_or_else(|| (within.erased)(&dotted));
    } else if let Value::Object(fields) = value {
        for (name, inner) in fields.iter_mut() {
            open_inside(
                cipher,
                subject,
                event_id,
                within,
                format!("{dotted}.{name}"),
                inner,
            );
        }
    }
}

fn is_sealed(value: &Value) -> bool {
    sealed_text(value).is_some()
}

fn sealed_text(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(SEALED).and_then(Value::as_str),
        _ => None,
    }
}

/// Adds `item` to what `map` keeps for events of `event_type` on `stream_type` streams.
fn add_for<T>(
    map: &mut HashMap<String, HashMap<String, Vec<T>>>,
    stream_type: &str,
    event_type: &str,
    item: T,
) {
    map.entry(stream_type.to_owned())
        .or_default()
        .entry(event_type.to_owned())
        .or_default()
        .push(item);
}

fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn get_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, key| v.get_mut(key))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn protection() -> Protection {
        Protection::new(
            MasterKey::from_bytes([7; 32]),
            [
                (
                    "client",
                    "Registered",
                    "personal",
                    json!({"name": "[erased]"}),
                ),
                ("client", "Referred", "referrer.name", json!("[erased]")),
                ("client", "Referred", "note", json!("[erased]")),
            ],
        )
    }

    #[test]
    fn a_sealed_field_opens_only_with_its_key_and_in_its_place() {
        let p = protection();
        let subject = Uuid::new_v4();
        let event = Uuid::new_v4();
        let (key, wrapped) = p.new_key(subject).unwrap();
        let original = json!({"referrer": {"name": "Dr Patel", "organisation": "Frome MP"},
                              "note": "lives alone", "reasons": ["x"]});
        let mut payload = original.clone();
        p.seal(
            &key,
            subject,
            "client",
            &new_event("Referred", event, &[]),
            &mut payload,
        )
        .unwrap();
        let text = payload.to_string();
        assert!(!text.contains("Patel") && !text.contains("alone"), "{text}");
        assert_eq!(payload["referrer"]["organisation"], "Frome MP");

        // The wrapped key unwraps for its own subject only.
        let row = Some((Some(wrapped.clone()), p.master_key_id().to_owned()));
        let KeyState::Live(unwrapped) = p.key_state(subject, row.clone()).unwrap() else {
            panic!("live key expected");
        };
        assert!(p.key_state(Uuid::new_v4(), row).is_err());

        let read =
            |key, event, payload: &Value| opened(&p, key, subject, "Referred", event, payload);
        assert_eq!(read(Some(&unwrapped), event, &payload), original);

        // Moved to another event, the sealed value does not open.
        let moved = read(Some(&unwrapped), Uuid::new_v4(), &payload);
        assert_eq!(moved["note"], "[erased]");

        // Without the key: the erased form.
        let shredded = read(None, event, &payload);
        assert_eq!(shredded["referrer"]["name"], "[erased]");
        assert_eq!(shredded["note"], "[erased]");
    }

    /// `payload` as read back from event `event` of `event_type` on a client stream: opened
    /// with `key`, or without one.
    fn opened(
        p: &Protection,
        key: Option<&DataKey>,
        subject: Uuid,
        event_type: &str,
        event: Uuid,
        payload: &Value,
    ) -> Value {
        let mut opened = payload.clone();
        p.open(key, subject, "client", event_type, event, &mut opened);
        opened
    }

    fn new_event(event_type: &str, event_id: Uuid, own: &[&str]) -> NewEvent {
        NewEvent {
            event_id,
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload: Value::Null,
            personal_paths: own.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn an_event_s_own_personal_paths_are_sealed_and_open_without_being_named_again() {
        fn erased(path: &str) -> Value {
            json!(format!("[erased {path}]"))
        }
        let p = protection().sealed_within("client", "Corrected", "fields", erased);
        let subject = Uuid::new_v4();
        let event = Uuid::new_v4();
        let (key, _) = p.new_key(subject).unwrap();
        let original = json!({"fields": {"referrer": {"name": "Dr Patel", "organisation": "Frome MP"},
                                          "note": "lives alone", "answers": [1, 2]},
                              "reason": "typo"});
        let own = new_event("Corrected", event, &["fields.referrer.name", "fields.note"]);
        assert!(p.needs_key(
            "client",
            [("Corrected", &original, own.personal_paths.as_slice())]
        ));
        assert!(!p.needs_key("client", [("Corrected", &original, [].as_slice())]));
        let mut payload = original.clone();
        p.seal(&key, subject, "client", &own, &mut payload).unwrap();
        let text = payload.to_string();
        assert!(!text.contains("Patel") && !text.contains("alone"), "{text}");
        assert_eq!(payload["fields"]["answers"], json!([1, 2]));
        assert_eq!(payload["fields"]["referrer"]["organisation"], "Frome MP");

        // Read back without naming the paths: each opens, bound to its own path.
        let read = |key, payload: &Value| opened(&p, key, subject, "Corrected", event, payload);
        assert_eq!(read(Some(&key), &payload), original);
        // Without the key, each shows its erased form.
        let shredded = read(None, &payload);
        assert_eq!(
            shredded["fields"]["referrer"]["name"],
            "[erased fields.referrer.name]"
        );
        assert_eq!(shredded["fields"]["note"], "[erased fields.note]");
        assert_eq!(shredded["fields"]["answers"], json!([1, 2]));
        // Moved to another path inside, a sealed value does not open.
        let mut moved = payload.clone();
        moved["fields"]["text"] = moved["fields"]["note"].take();
        let moved = read(Some(&key), &moved);
        assert_eq!(moved["fields"]["text"], "[erased fields.text]");

        // A path outside every part opened on read is refused: it could never be read again.
        let outside = new_event("Corrected", event, &["reason"]);
        let mut payload = original.clone();
        assert!(
            p.seal(&key, subject, "client", &outside, &mut payload)
                .is_err()
        );
        let elsewhere = new_event("Corrected", event, &["fieldsnote"]);
        assert!(
            p.seal(&key, subject, "client", &elsewhere, &mut payload)
                .is_err()
        );
    }

    #[test]
    fn another_master_key_is_refused_with_its_id() {
        let p = protection();
        let subject = Uuid::new_v4();
        let (_, wrapped) = p.new_key(subject).unwrap();
        let other = Protection::new(MasterKey::from_bytes([8; 32]), []);
        let error = other
            .key_state(subject, Some((Some(wrapped), p.master_key_id().to_owned())))
            .err()
            .expect("another master key cannot unwrap");
        assert!(error.to_string().contains(p.master_key_id()), "{error}");
        assert!(matches!(
            other.key_state(subject, Some((None, String::new()))),
            Ok(KeyState::Destroyed)
        ));
    }

    #[test]
    fn master_keys_parse_from_hex_or_base64_and_never_print() {
        let key = MasterKey::generate().unwrap();
        let again = MasterKey::parse(&key.to_base64()).unwrap();
        assert_eq!(key.id(), again.id());
        let hex_key = MasterKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(hex_key.id(), MasterKey::from_bytes([0xab; 32]).id());
        assert!(
            MasterKey::parse("c2hvcnQ=")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
