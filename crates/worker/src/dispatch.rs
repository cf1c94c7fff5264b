//! From one message to provider calls: route its recipients by the account's rules
//! (`sluice_core::router`), call each route's providers in failover order (a transient
//! failure tries the next provider at once), and merge what became of every recipient.
//!
//! For an `smtp` provider the provider's sender name goes before a bare From, then the
//! message is DKIM-signed: one signed copy per sender name, shared by that name's routes.

mod progress;
mod routes;

use progress::{PreparedCopies, Progress, RouteAttempt, RouteEnd, merge};
use routes::{routes_of, rule_of};

use crate::bodies::DeliveryBody;
use crate::slots::{SlotLimits, Slots};
use sluice_core::router::{Route, Rule, Target};
use sluice_core::sealed::MasterKey;
use sluice_core::{AccountId, DeliveryReport, Envelope, MessageId, Source, Verdict};
use sluice_deliver::egress::{Egress, EgressPolicy};
use sluice_deliver::{Deliverer, Outbound, OutboundBody};
use sluice_store::ttl_cache::TtlCache;
use sluice_store::{DkimKeyRow, ProviderAttempt, ProviderRow, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::warn;

/// What delivery reads of an account: its providers (and the system-wide ones), its
/// routing rules and its DKIM keys.
#[derive(Debug)]
struct AccountSettings {
    providers: Vec<ProviderRow>,
    /// Parsed once per read; rules whose conditions no longer parse are left out.
    rules: Vec<Rule>,
    dkim_keys: Vec<DkimKeyRow>,
    /// Only an active account's mail leaves.
    status: sluice_core::AccountStatus,
    /// Sandbox mode: every message is captured, whatever the rules and providers say.
    sandbox: bool,
}

/// A message to hand out, with what rules may test.
#[derive(Debug, Clone, Copy)]
pub struct Dispatch<'a> {
    pub id: MessageId,
    pub account_id: AccountId,
    pub source: Source,
    pub tags: &'a [String],
    pub envelope: &'a Envelope,
    pub body: &'a DeliveryBody,
    /// A released captured message goes through this provider only.
    pub release_provider_id: Option<i64>,
    /// Sent through a sandboxed API key or SMTP credential.
    pub sandbox: bool,
}

/// Every provider call of one attempt, and the final result of every recipient.
#[derive(Debug, Clone)]
pub struct Dispatched {
    pub calls: Vec<ProviderAttempt>,
    pub merged: DeliveryReport,
}

impl Dispatched {
    /// Not tried: the provider had no free slot. Transient for every recipient (sync mode
    /// answers 451); the worker gives the message back to the queue without an attempt.
    fn busy(rcpts: &[String]) -> Dispatched {
        Dispatched {
            calls: Vec::new(),
            merged: DeliveryReport::uniform(
                BUSY,
                rcpts,
                Verdict::Transient,
                None,
                "every delivery slot of the provider is in use",
            ),
        }
    }

    /// Nothing sent, every recipient transient, for `reason`.
    fn not_sent(provider: &str, rcpts: &[String], reason: &str) -> Dispatched {
        Dispatched {
            calls: Vec::new(),
            merged: DeliveryReport::uniform(provider, rcpts, Verdict::Transient, None, reason),
        }
    }

    /// True when nothing was tried because the provider had no free slot.
    pub fn untried_busy(&self) -> bool {
        self.calls.is_empty() && self.merged.provider == BUSY
    }
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    master_key: Arc<MasterKey>,
    /// `delivery.default_provider`; a config reload replaces it.
    default: sluice_core::Live<dyn Deliverer>,
    hello_name: String,
    /// Checks the destinations of tenants' providers; system providers (no account, made
    /// by an admin) and the default provider (the operator's config) are trusted.
    tenant_egress: EgressPolicy,
    /// Deliverers by provider id, with the `updated_at` they were built from: a changed
    /// provider is rebuilt, an unchanged one keeps its connections and tokens.
    built: Mutex<HashMap<i64, Built>>,
    settings: TtlCache<AccountId, Arc<AccountSettings>>,
    /// What a sandboxed account's mail goes to.
    capture: Arc<dyn Deliverer>,
    /// Where every provider call's result is written, when set.
    delivery_log: Option<Arc<sluice_deliver::delivery_log::DeliveryLog>>,
    /// Slots per provider and destination host.
    slots: Slots,
    /// Bytes of stored bodies loaded at once.
    bodies: crate::bodies::BodyBudget,
}

/// Everything a Dispatcher is built from.
pub struct DispatcherSettings {
    pub store: Arc<dyn Store>,
    pub master_key: Arc<MasterKey>,
    /// `delivery.default_provider`: what messages no rule routes go to.
    pub default: Arc<dyn Deliverer>,
    /// The name this node greets upstream SMTP servers with.
    pub hello_name: String,
    /// Checks the destinations of tenants' providers.
    pub tenant_egress: EgressPolicy,
    /// How long an account's providers, rules and DKIM keys are reused
    /// (`store.account_cache_ms`).
    pub cache_ttl: std::time::Duration,
    /// `delivery.provider_concurrency`, `delivery.host_concurrency`.
    pub slots: SlotLimits,
    /// Where every provider call's result is written (`<data_dir>/delivery.log`), if anywhere.
    pub delivery_log: Option<Arc<sluice_deliver::delivery_log::DeliveryLog>>,
}

/// The provider name of a report for a message not tried because its provider had no free
/// slot.
pub const BUSY: &str = "busy";

/// How long a message waits for a slot of its provider before it goes back to the queue:
/// long enough for a fast provider's slots to free, short enough that mail for a slow one
/// holds the node's slots only briefly.
const SLOT_PATIENCE: std::time::Duration = std::time::Duration::from_millis(250);

/// A deliverer and the `updated_at` of the provider row it was built from.
type Built = (i64, Arc<dyn Deliverer>);

impl Dispatcher {
    pub fn new(settings: DispatcherSettings) -> Arc<Self> {
        let DispatcherSettings {
            store,
            master_key,
            default,
            hello_name,
            tenant_egress,
            cache_ttl,
            slots,
            delivery_log,
        } = settings;
        let bodies = crate::bodies::BodyBudget::new(store.body_storage(), slots.bodies_in_memory);
        Arc::new(Dispatcher {
            bodies,
            store,
            master_key,
            default: sluice_core::Live::from_arc(default),
            hello_name,
            tenant_egress,
            built: Mutex::new(HashMap::new()),
            settings: TtlCache::new(cache_ttl),
            capture: Arc::new(sluice_deliver::CaptureDeliverer),
            delivery_log,
            slots: Slots::new(slots),
        })
    }

    /// The message for delivery, `prefix` (the relay's delivery headers) first: a large
    /// stored one split for streaming, else whole within the node's budget of loaded
    /// bodies; or, when it cannot be read, the transient failure to record for `rcpts`.
    pub async fn prepare_body(
        &self,
        body: &sluice_core::MessageBody,
        prefix: Option<String>,
        rcpts: &[String],
    ) -> Result<DeliveryBody, Dispatched> {
        self.bodies.prepare(body, prefix).await.map_err(|error| {
            warn!(%error, "message body not readable");
            Dispatched::not_sent("body", rcpts, "the message body could not be read")
        })
    }

    /// The kind of the default provider, for logs.
    pub fn default_kind(&self) -> &'static str {
        self.default.get().kind()
    }

    /// Messages no rule routes go to `default` from now on (a reloaded
    /// `delivery.default_provider`); attempts under way finish with the old one.
    pub fn set_default(&self, default: Arc<dyn Deliverer>) {
        self.default.set_arc(default);
    }

    /// Delivers to every recipient of `message.envelope` the way the rules say.
    /// `sample` in [0, 1) draws weighted splits.
    pub async fn dispatch(&self, message: Dispatch<'_>, sample: f64) -> Dispatched {
        let rcpts = &message.envelope.rcpt_to;
        let settings = match self.settings(message.account_id).await {
            Ok(settings) => settings,
            Err(error) => {
                warn!(%error, "routing table not readable; trying again later");
                return Dispatched::not_sent("router", rcpts, "routing table not readable");
            }
        };
        // Mail of a suspended or deleted account never leaves: a message claimed before
        // the suspension held it (leased then, or accepted within the cache window) is
        // deferred with nothing sent; the suspension's sweep or a deletion's takes it.
        if !settings.status.is_active() {
            let reason = format!("account {}: not sent", settings.status.as_str());
            return Dispatched::not_sent("account", rcpts, &reason);
        }
        // A sandboxed account's mail is captured whatever the routing says; a release of
        // captured mail (a deliberate act) still goes where the release says.
        let sandboxed =
            (settings.sandbox || message.sandbox) && message.release_provider_id.is_none();
        let routes = routes_of(message, &settings, sandboxed, sample);
        let mut progress = Progress::default();
        // The copy for SMTP providers: sender name applied, then DKIM-signed; made once
        // per sender name, when an SMTP provider with that name is first used.
        let mut prepared = PreparedCopies::default();
        for route in routes {
            let attempt = RouteAttempt {
                message,
                settings: &settings,
                sandboxed,
            };
            let end = self
                .deliver_route(attempt, route, &mut prepared, &mut progress)
                .await;
            if end == RouteEnd::Busy {
                return Dispatched::busy(rcpts);
            }
        }
        let merged = merge(&progress.calls, progress.finals);
        Dispatched {
            calls: progress.calls,
            merged,
        }
    }

    /// One route's providers in failover order, until no recipient of it is left
    /// transient. `Busy` when the first call of the whole message found no free slot.
    async fn deliver_route(
        &self,
        attempt: RouteAttempt<'_>,
        route: Route,
        prepared: &mut PreparedCopies,
        progress: &mut Progress,
    ) -> RouteEnd {
        let RouteAttempt {
            message,
            settings,
            sandboxed,
        } = attempt;
        let mut remaining = route.recipients;
        for (index, target) in route.targets.iter().enumerate() {
            let (provider_id, deliverer) = if sandboxed {
                (None, self.capture.clone())
            } else {
                self.deliverer(*target, &settings.providers)
            };
            let body = match self
                .outbound_body(message, &*deliverer, &settings.dkim_keys, prepared)
                .await
            {
                Ok(body) => body,
                Err(error) => {
                    // Not readable now: nothing sent, the route's recipients left wait.
                    warn!(%error, "message body not readable");
                    let report = DeliveryReport::uniform(
                        deliverer.kind(),
                        &remaining,
                        Verdict::Transient,
                        None,
                        "the message body could not be read",
                    );
                    progress.finals.extend(report.recipients);
                    break;
                }
            };
            let Some(held) = self.take_slot(sandboxed, provider_id, &*deliverer).await else {
                // Nothing tried yet: the whole message waits, untried.
                if progress.calls.is_empty() {
                    return RouteEnd::Busy;
                }
                // Part of it went out already: the rest waits as a transient failure.
                let report = DeliveryReport::uniform(
                    deliverer.kind(),
                    &remaining,
                    Verdict::Transient,
                    None,
                    "every delivery slot of the provider is in use",
                );
                progress.finals.extend(report.recipients);
                break;
            };
            let envelope = Envelope {
                rcpt_to: remaining.clone(),
                ..message.envelope.clone()
            };
            let outbound = Outbound {
                id: message.id,
                account_id: message.account_id,
                envelope: &envelope,
                body,
            };
            let report = deliverer.deliver(outbound).await;
            drop(held);
            self.log_call(message, provider_id, &report);
            let last = index + 1 == route.targets.len();
            remaining = progress.record(provider_id, report, last);
            if remaining.is_empty() {
                break;
            }
        }
        RouteEnd::Done
    }

    /// A delivery slot of the provider and its destination host; `Some(None)` when
    /// capturing, which takes none (it waits on no upstream); None when every slot is
    /// in use.
    async fn take_slot(
        &self,
        sandboxed: bool,
        provider_id: Option<i64>,
        deliverer: &dyn Deliverer,
    ) -> Option<Option<crate::slots::Held>> {
        if sandboxed {
            return Some(None);
        }
        let destination = deliverer.destination();
        self.slots
            .take(provider_id, destination.as_deref(), SLOT_PATIENCE)
            .await
            .map(Some)
    }

    /// The call's result in the delivery log, when there is one.
    fn log_call(&self, message: Dispatch<'_>, provider_id: Option<i64>, report: &DeliveryReport) {
        if let Some(log) = &self.delivery_log {
            let logged = sluice_deliver::delivery_log::LoggedMessage {
                id: message.id,
                account_id: message.account_id,
                mail_from: &message.envelope.mail_from,
            };
            log.append(&sluice_deliver::delivery_log::format_lines(
                crate::now_ms(),
                &logged,
                provider_id,
                report,
            ));
        }
    }

    /// The message as `deliverer` gets it. An SMTP provider gets the copy made for its
    /// sender name (made once per name; streamed when the message is split); a deliverer
    /// that needs the whole message gets a split one loaded, within the budget, once per
    /// message. Err: the message could not be read.
    async fn outbound_body<'a>(
        &self,
        message: Dispatch<'a>,
        deliverer: &dyn Deliverer,
        keys: &[DkimKeyRow],
        prepared: &'a mut PreparedCopies,
    ) -> Result<OutboundBody<'a>, sluice_core::BodyError> {
        if !deliverer.streams_bodies() {
            return match message.body {
                DeliveryBody::Whole(loaded) => Ok(OutboundBody::Whole(&loaded.bytes)),
                DeliveryBody::Split(split) => {
                    if prepared.whole.is_none() {
                        prepared.whole = Some(self.bodies.load_split(split).await?);
                    }
                    let loaded = prepared.whole.as_ref().expect("loaded above");
                    Ok(OutboundBody::Whole(&loaded.bytes))
                }
            };
        }
        let copy = if deliverer.kind() == "smtp" {
            let name = deliverer.sender_name().map(str::to_string);
            if !prepared.copies.contains_key(&name) {
                let copy = self.smtp_copy(message, name.as_deref(), keys).await;
                prepared.copies.insert(name.clone(), copy);
            }
            prepared.copies.get(&name).and_then(|copy| copy.as_deref())
        } else {
            None
        };
        Ok(match message.body {
            DeliveryBody::Whole(loaded) => OutboundBody::Whole(copy.unwrap_or(&loaded.bytes)),
            DeliveryBody::Split(split) => OutboundBody::Streamed {
                head: copy.unwrap_or(&split.head),
                body: split,
            },
        })
    }

    /// The copy an SMTP provider sends (of a split message: its head): its sender name put
    /// before a bare From, then signed; None when that is the stored message unchanged.
    async fn smtp_copy(
        &self,
        message: Dispatch<'_>,
        sender_name: Option<&str>,
        keys: &[DkimKeyRow],
    ) -> Option<Vec<u8>> {
        let original = message.body.headers();
        let named = sender_name
            .and_then(|name| sluice_deliver::sender_name::with_sender_name(original, name));
        let body = named.as_deref().unwrap_or(original);
        let split = match message.body {
            DeliveryBody::Whole(_) => None,
            DeliveryBody::Split(split) => Some(split),
        };
        self.dkim_signed(body, split, keys).await.or(named)
    }

    /// `body` (of a split message: its head, the rest read from `split`) DKIM-signed with
    /// the account's enabled key for its From domain; None when there is no such key or
    /// signing failed (the message then goes unsigned).
    async fn dkim_signed(
        &self,
        body: &[u8],
        split: Option<&sluice_core::split_body::SplitBody>,
        keys: &[DkimKeyRow],
    ) -> Option<Vec<u8>> {
        if keys.is_empty() {
            return None;
        }
        let domain = sluice_deliver::dkim::from_domain(body)?;
        let row = keys.iter().find(|k| k.enabled && k.domain == domain)?;
        let Ok(pkcs8) = self.master_key.open(&row.private_key) else {
            warn!(
                dkim_key = row.id,
                "DKIM key does not open with this node's master key; sending unsigned"
            );
            return None;
        };
        let key = sluice_deliver::dkim::DkimKey {
            algorithm: sluice_deliver::dkim::DkimAlgorithm::parse(&row.algorithm)?,
            pkcs8,
            domain: row.domain.clone(),
            selector: row.selector.clone(),
        };
        let signed = match split {
            None => key.sign(body),
            Some(split) => key.sign_split(body, split).await,
        };
        match signed {
            Ok(signed) => Some(signed),
            Err(error) => {
                warn!(%error, dkim_key = row.id, "DKIM signing failed; sending unsigned");
                None
            }
        }
    }

    /// The account's delivery settings, read at most once per `store.account_cache_ms`.
    async fn settings(&self, account_id: AccountId) -> Result<Arc<AccountSettings>, StoreError> {
        if let Some(settings) = self.settings.get(&account_id) {
            return Ok(settings);
        }
        let providers = self.store.routing_providers(account_id).await?;
        let rules = if providers.is_empty() {
            Vec::new()
        } else {
            let rows = self.store.list_rules(Some(account_id)).await?;
            rows.iter().filter_map(rule_of).collect()
        };
        let dkim_keys = self.store.list_dkim_keys(Some(account_id)).await?;
        let (status, sandbox) = self
            .store
            .account(account_id)
            .await?
            .map_or((sluice_core::AccountStatus::Deleted, false), |a| {
                (a.state(), a.sandbox)
            });
        let settings = Arc::new(AccountSettings {
            providers,
            rules,
            dkim_keys,
            status,
            sandbox,
        });
        self.settings.put(account_id, settings.clone());
        Ok(settings)
    }

    /// The deliverer for a target, built from its row (secrets opened) or taken from cache.
    fn deliverer(
        &self,
        target: Target,
        providers: &[ProviderRow],
    ) -> (Option<i64>, Arc<dyn Deliverer>) {
        let Target::Provider(id) = target else {
            return (None, self.default.get());
        };
        let Some(row) = providers.iter().find(|p| p.id == id) else {
            return (None, self.default.get());
        };
        let mut built = self.built.lock().expect("deliverer cache");
        if let Some((updated_at, deliverer)) = built.get(&id)
            && *updated_at == row.updated_at
        {
            return (Some(id), deliverer.clone());
        }
        let opened = sluice_core::provider_spec::open_config(
            &self.master_key,
            row.provider_type,
            &row.config,
            &row.secrets,
        );
        let deliverer = match opened {
            Ok(config) => {
                let egress = match row.account_id {
                    Some(_) => Egress::Policed(self.tenant_egress.clone()),
                    None => Egress::Trusted,
                };
                sluice_deliver::from_config(&config, &self.hello_name, &egress)
            }
            Err(problem) => {
                warn!(provider_id = id, %problem, "provider cannot be used");
                Arc::new(Misconfigured {
                    kind: row.provider_type.as_str(),
                    problem,
                }) as Arc<dyn Deliverer>
            }
        };
        built.insert(id, (row.updated_at, deliverer.clone()));
        (Some(id), deliverer)
    }
}

/// Stands in for a provider whose settings cannot be used: every recipient waits (an
/// operator can fix the provider) and the reason is recorded.
struct Misconfigured {
    kind: &'static str,
    problem: String,
}

#[async_trait::async_trait]
impl Deliverer for Misconfigured {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::uniform(
            self.kind,
            &message.envelope.rcpt_to,
            Verdict::Transient,
            None,
            "provider misconfigured",
        );
        report
            .events
            .push(("provider_misconfigured".into(), self.problem.clone()));
        report
    }
}
