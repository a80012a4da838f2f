//! systemd's signals as a stream of [`Event`]s, without polling and without one match per unit.
//!
//! Two match rules cover everything: `JobRemoved` on the manager object, and
//! `PropertiesChanged` for the `org.freedesktop.systemd1.Unit` interface of any object under
//! `/org/freedesktop/systemd1/unit` (`path_namespace`). Both are added to the bus (`AddMatch`)
//! so the daemon filters for us; on systemd's private socket, where systemd sends every signal
//! to every peer, the same rules filter on our side.
//!
//! A task reads the connection's one message queue in arrival order, so events keep the order
//! systemd sent them in: a job's `JobRemoved` comes *before* its unit's final
//! `PropertiesChanged` (DESIGN §6), hence "job done" is `JobRemoved` and the unit's state is
//! then read fresh ([`super::Systemd::states`]). The task forwards into an unbounded channel:
//! zbus stops reading the socket while a queue is full, which would also hold up method
//! replies, so the task must never wait on the consumer. It removes its match rules and ends
//! when the [`Events`] is dropped.

use std::collections::VecDeque;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use zbus::message::Type;
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedObjectPath};
use zbus_systemd::systemd1::ManagerProxy;

use super::bus_path::{unit_name, UNIT_PATH_PREFIX};
use super::error::{Result, SystemdError};
use super::types::JobPath;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";
/// systemd's error when this connection already called `Subscribe`.
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";

/// Something systemd told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job finished. `result` is `done`, `canceled`, `timeout`, `failed`, `dependency`,
    /// `skipped` (or `invalid`, `assert`, `unsupported`, `collected`, `once`).
    JobRemoved {
        /// The job's number.
        id: u32,
        /// The job's object path, as [`super::Systemd::start`] returned it.
        job: JobPath,
        /// The unit the job was for.
        unit: String,
        /// How the job ended.
        result: String,
    },
    /// Some property of the unit changed (its state, most often): read it fresh.
    UnitChanged {
        /// The unit's name, decoded from its object path.
        name: String,
    },
}

/// The stream of [`Event`]s from one connection, in the order systemd sent them (a job's
/// `JobRemoved` before its unit's last `UnitChanged`). Nothing is lost while the consumer is
/// busy (the queue is unbounded: drain it); dropping it takes its match rules off the bus.
#[derive(Debug)]
pub struct Events {
    address: String,
    receiver: mpsc::UnboundedReceiver<Result<Event>>,
    /// Events read past by [`Events::wait_job`], handed out first by [`Events::next`].
    held: VecDeque<Event>,
}

impl Events {
    pub(super) async fn subscribe(
        address: &str,
        connection: &Connection,
        manager: &ManagerProxy<'static>,
    ) -> Result<Self> {
        let failed = |method: &'static str, argument: String| {
            move |source| SystemdError::Call {
                address: address.to_owned(),
                method,
                argument,
                source: Box::new(source),
            }
        };
        let rules = [
            job_removed_rule().map_err(failed("AddMatch", "JobRemoved".to_owned()))?,
            unit_changed_rule().map_err(failed("AddMatch", "PropertiesChanged".to_owned()))?,
        ];
        // The queue exists before the rules are added, so no signal can slip past.
        let messages = MessageStream::from(connection);
        if connection.is_bus() {
            let bus = zbus::fdo::DBusProxy::new(connection)
                .await
                .map_err(failed("AddMatch", String::new()))?;
            for rule in &rules {
                bus.add_match_rule(rule.clone())
                    .await
                    .map_err(|e| failed("AddMatch", rule.to_string())(e.into()))?;
            }
        }
        match manager.subscribe().await {
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == ALREADY_SUBSCRIBED => {}
            other => other.map_err(failed("Subscribe", String::new()))?,
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(forward(
            address.to_owned(),
            connection.clone(),
            messages,
            rules,
            sender,
        ));
        Ok(Self {
            address: address.to_owned(),
            receiver,
            held: VecDeque::new(),
        })
    }

    /// The next event; `None` once the connection has closed. An error (the connection broke)
    /// is followed by `None`.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        match self.held.pop_front() {
            Some(event) => Some(Ok(event)),
            None => self.receiver.recv().await,
        }
    }

    /// Waits for `job` to finish and returns its result (`done`, `failed`, `canceled`,
    /// `timeout`, `dependency`, `skipped`, …). Other events read meanwhile stay queued for
    /// [`Events::next`]. Take the [`Events`] before queueing the job, or it may be missed.
    ///
    /// # Errors
    /// [`SystemdError::Signals`] or [`SystemdError::SignalsEnded`] when the connection breaks
    /// first.
    ///
    /// ```no_run
    /// # async fn f(systemd: agent::systemd::Systemd) -> agent::systemd::Result<()> {
    /// let mut events = systemd.events().await?;
    /// let job = systemd.start("web.service").await?;
    /// assert_eq!(events.wait_job(&job).await?, "done");
    /// # Ok(()) }
    /// ```
    pub async fn wait_job(&mut self, job: &JobPath) -> Result<String> {
        if let Some(at) = self.held.iter().position(|e| is_removal_of(e, job)) {
            if let Some(Event::JobRemoved { result, .. }) = self.held.remove(at) {
                return Ok(result);
            }
        }
        loop {
            match self.receiver.recv().await {
                Some(Ok(Event::JobRemoved {
                    job: removed,
                    result,
                    ..
                })) if removed == *job => return Ok(result),
                Some(Ok(event)) => self.held.push_back(event),
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(SystemdError::SignalsEnded {
                        address: self.address.clone(),
                        job: job.to_string(),
                    })
                }
            }
        }
    }
}

fn is_removal_of(event: &Event, job: &JobPath) -> bool {
    matches!(event, Event::JobRemoved { job: removed, .. } if removed == job)
}

fn job_removed_rule() -> zbus::Result<MatchRule<'static>> {
    MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(SYSTEMD)
        .path(MANAGER_PATH)
        .interface(MANAGER_INTERFACE)
        .member("JobRemoved")
        .build()
}

fn unit_changed_rule() -> zbus::Result<MatchRule<'static>> {
    MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(SYSTEMD)
        .path_namespace(UNIT_PATH_PREFIX)
        .interface(PROPERTIES_INTERFACE)
        .member("PropertiesChanged")
        .arg(0, UNIT_INTERFACE)
        .build()
}

/// The task behind [`Events`]: decodes matching messages in arrival order until the consumer
/// is gone or the connection fails, then takes its rules off the bus.
async fn forward(
    address: String,
    connection: Connection,
    mut messages: MessageStream,
    rules: [MatchRule<'static>; 2],
    sender: mpsc::UnboundedSender<Result<Event>>,
) {
    let [jobs, units] = &rules;
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = sender.closed() => break,
        };
        let event = match message {
            None => return,
            Some(Err(source)) => {
                let source = Box::new(source);
                let _ = sender.send(Err(SystemdError::Signals { address, source }));
                return;
            }
            Some(Ok(message)) => decode(&message, jobs, units),
        };
        if let Some(event) = event {
            if sender.send(Ok(event)).is_err() {
                break;
            }
        }
    }
    drop(messages);
    if connection.is_bus() {
        if let Ok(bus) = zbus::fdo::DBusProxy::new(&connection).await {
            for rule in rules {
                let _ = bus.remove_match_rule(rule).await;
            }
        }
    }
}

/// The event `message` is, if it matches one of the two rules and decodes.
fn decode(message: &Message, jobs: &MatchRule<'_>, units: &MatchRule<'_>) -> Option<Event> {
    if jobs.matches(message).unwrap_or(false) {
        let (id, job, unit, result) = message
            .body()
            .deserialize::<(u32, OwnedObjectPath, String, String)>()
            .map_err(|e| tracing::warn!(%e, "undecodable JobRemoved signal from systemd"))
            .ok()?;
        return Some(Event::JobRemoved {
            id,
            job: JobPath::from(job),
            unit,
            result,
        });
    }
    if units.matches(message).unwrap_or(false) {
        let path = message.header().path()?.as_str().to_owned();
        return unit_name(&path).map(|name| Event::UnitChanged { name });
    }
    None
}
