//! The etcd registry against a real etcd started by each test: units as the API writes them,
//! machine presence (duplicates, adoption after a restart, expiry, leaving), the scheduler's
//! election and guarded writes, snapshots and watches without gaps, and a 3-member cluster
//! that loses a member.

mod etcd_cluster;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use agent::cluster::model::{Assignment, DesiredState, MachineRecord, ReportedState, UnitRecord};
use agent::registry::{
    Change, Credentials, Presence, Registry, RegistryError, RequestKind, Resync, ScheduleOp,
    StaleUnit, StateFilter, StateReport, WatchUpdate,
};
use etcd_cluster::Etcd;

/// How long any one wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {PATIENCE:?}"))
}

/// Polls `check` until it holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

async fn registry(etcd: &Etcd) -> Registry {
    Registry::connect(&etcd.config(etcd.endpoints()))
        .await
        .expect("connect to etcd")
}

fn unit(name: &str, desired_state: DesiredState, contents: &str) -> UnitRecord {
    UnitRecord {
        name: name.to_owned(),
        hash: format!("hash-of-{contents}"),
        desired_state,
        contents: contents.to_owned(),
    }
}

fn machine(id: &str, ip: &str) -> MachineRecord {
    MachineRecord {
        id: id.to_owned(),
        public_ip: ip.to_owned(),
        metadata: BTreeMap::from([
            ("disk".to_owned(), "hdd".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
        ]),
        version: "0.1.0".to_owned(),
        disable_engine: false,
        api_address: None,
    }
}

fn running(hash: &str) -> ReportedState {
    ReportedState {
        hash: hash.to_owned(),
        load_state: "loaded".to_owned(),
        active_state: "active".to_owned(),
        sub_state: "running".to_owned(),
        launched_revision: 0,
    }
}

fn assign(machine: &str, unit: &UnitRecord, unit_revision: i64) -> ScheduleOp {
    ScheduleOp::Put {
        machine: machine.to_owned(),
        unit: unit.name.clone(),
        assignment: Assignment {
            hash: unit.hash.clone(),
            desired_state: DesiredState::Launched,
            contents: unit.contents.clone(),
            unit_revision,
        },
    }
}

const TTL: Duration = Duration::from_secs(2);

async fn machine_ids(registry: &Registry) -> Vec<String> {
    let list = registry.machines().await.unwrap();
    list.machines.into_iter().map(|m| m.record.id).collect()
}

async fn state_units(registry: &Registry, filter: StateFilter<'_>) -> Vec<(String, String)> {
    let list = registry.states(filter).await.unwrap();
    list.states
        .into_iter()
        .map(|entry| (entry.machine, entry.unit))
        .collect()
}

#[tokio::test]
async fn units_are_created_once_replaced_started_and_destroyed() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let web = unit(
        "web.service",
        DesiredState::Inactive,
        "[Service]\nExecStart=/bin/web\n",
    );

    let created = registry.create_unit(&web).await.unwrap();
    let error = registry.create_unit(&web).await.unwrap_err();
    assert!(matches!(error, RegistryError::UnitExists { .. }));
    assert_eq!(error.to_string(), "unit web.service already exists");
    let stored = registry.unit("web.service").await.unwrap().unwrap();
    assert_eq!(stored.value, web);
    assert_eq!(stored.mod_revision, created);

    // A start of a unit that is already launched still moves its revision.
    let launched = registry
        .set_desired_state("web.service", DesiredState::Launched)
        .await
        .unwrap();
    assert_eq!(launched.value.desired_state, DesiredState::Launched);
    assert!(launched.mod_revision > created);
    let again = registry
        .set_desired_state("web.service", DesiredState::Launched)
        .await
        .unwrap();
    assert!(again.mod_revision > launched.mod_revision);
    assert_eq!(registry.unit("web.service").await.unwrap().unwrap(), again);

    // Replace overwrites contents and resets the desired state as told.
    let changed = unit(
        "web.service",
        DesiredState::Loaded,
        "[Service]\nExecStart=/bin/web2\n",
    );
    let replaced = registry.replace_unit(&changed).await.unwrap();
    let stored = registry.unit("web.service").await.unwrap().unwrap();
    assert_eq!((stored.value, stored.mod_revision), (changed, replaced));
    let db = unit(
        "db.service",
        DesiredState::Launched,
        "[Service]\nExecStart=/bin/db\n",
    );
    registry.replace_unit(&db).await.unwrap();
    let names: Vec<String> = registry
        .units()
        .await
        .unwrap()
        .units
        .into_iter()
        .map(|u| u.value.name)
        .collect();
    assert_eq!(names, ["db.service", "web.service"]);

    assert!(registry.destroy_unit("web.service").await.unwrap());
    assert!(!registry.destroy_unit("web.service").await.unwrap());
    assert_eq!(registry.unit("web.service").await.unwrap(), None);
    let error = registry
        .set_desired_state("web.service", DesiredState::Launched)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "unit web.service not found");
    let error = registry
        .create_unit(&unit("a/b.service", DesiredState::Inactive, ""))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid unit name \"a/b.service\": must be non-empty and contain no '/'"
    );
}

#[tokio::test]
async fn a_second_machine_with_the_same_id_is_refused_and_a_restart_adopts_its_lease() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let id = "0123456789abcdef0123456789abcdef";

    let first = Presence::register(&registry, &machine(id, "10.0.0.5"), TTL, None)
        .await
        .unwrap();
    let lease = first.lease();
    first
        .put_state("web.service", &running("h1"))
        .await
        .unwrap();

    let error = Presence::register(&registry, &machine(id, "10.0.0.6"), TTL, None)
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::DuplicateMachine { .. }));
    let message = error.to_string();
    assert!(message.contains(&format!("machine {id} is already registered by 10.0.0.5")));
    assert!(message.contains("another machine has the same /etc/machine-id"));
    let error = Presence::register(&registry, &machine(id, "10.0.0.6"), TTL, Some(lease + 1))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::DuplicateMachine { .. }));

    // The agent stops without leaving (a crash, an upgrade) and comes back within the TTL
    // with the lease it saved: same lease, its states are still there, its record refreshed.
    drop(first);
    let mut restarted = machine(id, "10.0.0.5");
    restarted.version = "0.2.0".to_owned();
    let second = Presence::register(&registry, &restarted, TTL, Some(lease))
        .await
        .unwrap();
    assert_eq!(second.lease(), lease);
    assert_eq!(
        state_units(&registry, StateFilter::Machine(id)).await,
        [(id.to_owned(), "web.service".to_owned())]
    );
    let machines = registry.machines().await.unwrap().machines;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0].record, restarted);
    assert_eq!(machines[0].lease, lease);
    assert!(second.status().borrow().is_alive());
}

#[tokio::test]
async fn dynamic_metadata_lies_over_the_configured_metadata() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let id = "m1";
    let _presence = Presence::register(&registry, &machine(id, "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    let effective = || async {
        let list = registry.machines().await.unwrap();
        list.machines[0]
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(effective().await, ["disk=hdd", "region=eu"]);
    registry.set_metadata(id, "disk", "ssd").await.unwrap();
    registry.set_metadata(id, "rack", "r1").await.unwrap();
    registry.set_metadata(id, "region", "").await.unwrap();
    assert_eq!(effective().await, ["disk=ssd", "rack=r1"]);
    assert!(registry.remove_metadata(id, "disk").await.unwrap());
    assert!(!registry.remove_metadata(id, "disk").await.unwrap());
    registry.remove_metadata(id, "rack").await.unwrap();
    registry.remove_metadata(id, "region").await.unwrap();
    assert_eq!(effective().await, ["disk=hdd", "region=eu"]);
}

#[tokio::test]
async fn an_expired_lease_takes_the_machine_and_its_states_while_a_kept_one_stays() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let gone = Presence::register(&registry, &machine("gone", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    let kept = Presence::register(&registry, &machine("kept", "10.0.0.2"), TTL, None)
        .await
        .unwrap();
    gone.put_state("a.service", &running("h")).await.unwrap();
    kept.put_state("b.service", &running("h")).await.unwrap();
    assert_eq!(machine_ids(&registry).await, ["gone", "kept"]);

    drop(gone); // no more keep-alives: etcd expires the lease after the TTL
    eventually("the expired machine to vanish", || async {
        machine_ids(&registry).await == ["kept"]
    })
    .await;
    assert_eq!(
        state_units(&registry, StateFilter::All).await,
        [("kept".to_owned(), "b.service".to_owned())]
    );
    assert!(kept.status().borrow().is_alive());
}

#[tokio::test]
async fn leaving_removes_the_machine_and_its_states_at_once() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let presence = Presence::register(&registry, &machine("m1", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    presence
        .put_state("a.service", &running("h"))
        .await
        .unwrap();
    presence
        .put_state("b.service", &running("h"))
        .await
        .unwrap();
    presence
        .report(&[StateReport::Withdraw { unit: "b.service" }])
        .await
        .unwrap();
    assert_eq!(
        state_units(&registry, StateFilter::Unit("a.service")).await,
        [("m1".to_owned(), "a.service".to_owned())]
    );

    presence.leave().await.unwrap();
    assert!(machine_ids(&registry).await.is_empty());
    assert!(state_units(&registry, StateFilter::All).await.is_empty());
    // The same machine can register again right away.
    Presence::register(&registry, &machine("m1", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lease_revoked_behind_the_agents_back_is_reported_lost() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let presence = Presence::register(&registry, &machine("m1", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    let mut status = presence.status();
    etcd.client(0)
        .await
        .lease_revoke(presence.lease())
        .await
        .unwrap();
    within("the loss to be reported", status.changed())
        .await
        .unwrap();
    let lost = *status.borrow();
    match lost {
        agent::registry::LeaseStatus::Lost {
            cause,
            renewed,
            detected,
            expired_by,
        } => {
            assert_eq!(cause, agent::registry::LossCause::Gone);
            assert!(renewed <= expired_by && expired_by <= detected);
        }
        alive => panic!("lease still {alive:?}"),
    }
    let error = presence
        .put_state("a.service", &running("h"))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::LeaseLost { .. }), "{error}");
}

#[tokio::test]
async fn one_candidate_leads_the_other_takes_over_and_the_deposed_one_cannot_write() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let web = unit("web.service", DesiredState::Launched, "[Service]\n");
    let revision = registry.create_unit(&web).await.unwrap();
    let a = Presence::register(&registry, &machine("a", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    let b = Presence::register(&registry, &machine("b", "10.0.0.2"), TTL, None)
        .await
        .unwrap();

    let leading = within("a's campaign", registry.campaign("a", a.lease()))
        .await
        .unwrap();
    assert_eq!(registry.leader().await.unwrap().unwrap().machine_id, "a");
    let candidate = {
        let registry = registry.clone();
        let lease = b.lease();
        tokio::spawn(async move { registry.campaign("b", lease).await })
    };
    registry
        .apply(&leading, &[assign("a", &web, revision)])
        .await
        .unwrap();
    assert!(!candidate.is_finished(), "b won while a leads");
    assert_eq!(registry.leader().await.unwrap().unwrap().machine_id, "a");

    a.leave().await.unwrap();
    within("a to notice", registry.leadership_lost(&leading))
        .await
        .unwrap();
    let b_leads = within("b's campaign", candidate).await.unwrap().unwrap();
    assert_eq!(b_leads.machine_id(), "b");
    assert_eq!(registry.leader().await.unwrap().unwrap().machine_id, "b");

    let error = registry
        .apply(&leading, &[assign("b", &web, revision)])
        .await
        .unwrap_err();
    match &error {
        RegistryError::Deposed {
            batch: 0,
            applied: 0,
            now,
        } => assert_eq!(now, "b"),
        other => panic!("expected deposed, got {other}"),
    }
    let snapshot = registry.snapshot_cluster().await.unwrap();
    assert!(!snapshot
        .assignments
        .contains_key(&("b".to_owned(), "web.service".to_owned())));

    // b resigns; a third campaign on b's lease wins again.
    registry.resign(&b_leads).await.unwrap();
    assert_eq!(registry.leader().await.unwrap(), None);
    let again = registry.campaign("b", b.lease()).await.unwrap();
    assert!(again.create_revision() > b_leads.create_revision());
}

#[tokio::test]
async fn an_assignment_made_from_a_stale_unit_revision_is_refused() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let presence = Presence::register(&registry, &machine("m0", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    let leading = registry.campaign("m0", presence.lease()).await.unwrap();
    let web = unit("web.service", DesiredState::Loaded, "[Service]\n");
    let old = registry.create_unit(&web).await.unwrap();
    let new = registry
        .set_desired_state("web.service", DesiredState::Launched)
        .await
        .unwrap()
        .mod_revision;

    let error = registry
        .apply(&leading, &[assign("m0", &web, old)])
        .await
        .unwrap_err();
    match &error {
        RegistryError::StaleUnits {
            batch: 0,
            applied: 0,
            stale,
        } => assert_eq!(
            stale,
            &[StaleUnit {
                name: "web.service".to_owned(),
                expected: old,
                actual: Some(new),
            }]
        ),
        other => panic!("expected stale units, got {other}"),
    }
    assert!(registry
        .snapshot_cluster()
        .await
        .unwrap()
        .assignments
        .is_empty());

    // A global unit on 250 machines: three transactions, counted as such.
    let ops: Vec<ScheduleOp> = (0..250)
        .map(|i| assign(&format!("m{i}"), &web, new))
        .collect();
    let before = registry.request_counts();
    let applied = registry.apply(&leading, &ops).await.unwrap();
    assert_eq!(applied.batches, 3);
    assert_eq!(
        registry
            .request_counts()
            .since(&before)
            .get(RequestKind::Txn),
        3
    );
    let snapshot = registry.snapshot_cluster().await.unwrap();
    assert_eq!(snapshot.assignments.len(), 250);
    assert_eq!(snapshot.revision, applied.revision);
    assert_eq!(
        snapshot.units["web.service"].mod_revision, new,
        "the snapshot carries unit revisions"
    );

    // Destroyed since the decision: stale, with no revision now.
    registry.destroy_unit("web.service").await.unwrap();
    let error = registry
        .apply(
            &leading,
            &[
                ScheduleOp::Delete {
                    machine: "m1".to_owned(),
                    unit: "web.service".to_owned(),
                },
                assign("m0", &web, new),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().ends_with(&format!(
            "stale units web.service (decided at revision {new}, now destroyed)"
        )),
        "{error}"
    );
    let deletes: Vec<ScheduleOp> = (0..250)
        .map(|i| ScheduleOp::Delete {
            machine: format!("m{i}"),
            unit: "web.service".to_owned(),
        })
        .collect();
    registry.apply(&leading, &deletes).await.unwrap();
    assert!(registry
        .snapshot_cluster()
        .await
        .unwrap()
        .assignments
        .is_empty());
}

#[tokio::test]
async fn an_agent_sees_only_its_own_assignments() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let presence = Presence::register(&registry, &machine("m1", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    let leading = registry.campaign("m1", presence.lease()).await.unwrap();
    let web = unit("web.service", DesiredState::Launched, "[Service]\n");
    let db = unit("db.service", DesiredState::Launched, "[Service]\n");
    let web_revision = registry.create_unit(&web).await.unwrap();
    let db_revision = registry.create_unit(&db).await.unwrap();
    registry
        .apply(
            &leading,
            &[
                assign("m1", &web, web_revision),
                assign("m2", &db, db_revision),
            ],
        )
        .await
        .unwrap();

    let (snapshot, mut watch) = registry.schedule_for("m1").await.unwrap();
    assert_eq!(
        snapshot.assignments.keys().collect::<Vec<_>>(),
        ["web.service"]
    );
    registry
        .apply(
            &leading,
            &[
                assign("m2", &web, web_revision),
                ScheduleOp::Delete {
                    machine: "m1".to_owned(),
                    unit: "web.service".to_owned(),
                },
                assign("m1", &db, db_revision),
            ],
        )
        .await
        .unwrap();
    let WatchUpdate::Events(events) = within("m1's events", watch.next()).await.unwrap() else {
        panic!("the watch ended");
    };
    let changes: Vec<(String, bool)> = events
        .into_iter()
        .map(|event| match event.change {
            Change::Assignment {
                machine,
                unit,
                assignment,
            } => (format!("{machine}/{unit}"), assignment.is_some()),
            other => panic!("not an assignment: {other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("m1/web.service".to_owned(), false),
            ("m1/db.service".to_owned(), true)
        ]
    );
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_asks_for_a_resync() {
    let etcd = Etcd::start(1).await;
    let registry = registry(&etcd).await;
    let first = registry
        .create_unit(&unit("a.service", DesiredState::Inactive, ""))
        .await
        .unwrap();
    let last = registry
        .create_unit(&unit("b.service", DesiredState::Inactive, ""))
        .await
        .unwrap();
    etcd.client(0).await.compact(last, None).await.unwrap();
    let mut watch = registry
        .watch(&registry.keys().units(), first)
        .await
        .unwrap();
    assert_eq!(
        within("the watch", watch.next()).await.unwrap(),
        WatchUpdate::Resync(Resync::Compacted {
            compact_revision: last
        })
    );
}

#[tokio::test]
async fn a_watch_resumes_without_gaps_when_its_member_dies() {
    let mut etcd = Etcd::start(3).await;
    let registry = registry(&etcd).await;
    let snapshot = registry.snapshot_cluster().await.unwrap();
    let mut watch = registry
        .watch(&registry.keys().units(), snapshot.revision + 1)
        .await
        .unwrap();
    let mut written = Vec::new();
    for i in 0..5 {
        let record = unit(&format!("u{i}.service"), DesiredState::Inactive, "");
        written.push(registry.create_unit(&record).await.unwrap());
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.extend(next_unit_revisions(&mut watch).await);
    }

    // The watch's (and every request's) member dies; writes go on through the others.
    etcd.kill(0);
    for i in 5..10 {
        let record = unit(&format!("u{i}.service"), DesiredState::Inactive, "");
        written.push(
            within("a write", registry.create_unit(&record))
                .await
                .unwrap(),
        );
    }
    while seen.len() < 10 {
        seen.extend(next_unit_revisions(&mut watch).await);
    }
    assert_eq!(seen, written);
    assert_eq!(watch.next_revision(), written[9] + 1);
}

async fn next_unit_revisions(watch: &mut agent::registry::Watch) -> Vec<i64> {
    match within("watch events", watch.next()).await.unwrap() {
        WatchUpdate::Events(events) => events
            .into_iter()
            .map(|event| {
                assert!(matches!(
                    event.change,
                    Change::Unit {
                        record: Some(_),
                        ..
                    }
                ));
                event.revision
            })
            .collect(),
        WatchUpdate::Resync(resync) => panic!("unexpected resync: {resync:?}"),
    }
}

#[tokio::test]
async fn reads_and_writes_go_on_when_the_raft_leader_dies() {
    let mut etcd = Etcd::start(3).await;
    let leader = etcd.leader().await;
    // The dead member is the one every request goes to first.
    let mut endpoints = etcd.endpoints();
    endpoints.rotate_left(leader);
    let registry = Registry::connect(&etcd.config(endpoints)).await.unwrap();
    let presence = Presence::register(&registry, &machine("m1", "10.0.0.1"), TTL, None)
        .await
        .unwrap();
    registry
        .create_unit(&unit("before.service", DesiredState::Launched, ""))
        .await
        .unwrap();

    etcd.kill(leader);
    within(
        "a write after the kill",
        registry.create_unit(&unit("after.service", DesiredState::Launched, "")),
    )
    .await
    .unwrap();
    let units = within("a read after the kill", registry.units())
        .await
        .unwrap();
    assert_eq!(units.units.len(), 2);
    presence
        .put_state("after.service", &running("h"))
        .await
        .unwrap();
    assert_eq!(machine_ids(&registry).await, ["m1"]);
    assert!(presence.status().borrow().is_alive());
}

#[tokio::test]
async fn tls_with_a_client_certificate_and_a_password() {
    let etcd = Etcd::start_tls().await;
    let mut config = etcd.config(etcd.endpoints());
    config.tls = Some(etcd.certs().files(true));

    // Turn etcd's auth on (a root user is required for that).
    let mut admin = etcd.client(0).await;
    admin.user_add("root", "secret", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();

    config.credentials = Some(Credentials {
        user: "root".to_owned(),
        password: "secret".to_owned(),
    });
    let registry = Registry::connect(&config).await.unwrap();
    let web = unit("web.service", DesiredState::Launched, "[Service]\n");
    registry.create_unit(&web).await.unwrap();
    assert_eq!(
        registry.unit("web.service").await.unwrap().unwrap().value,
        web
    );

    config.credentials = Some(Credentials {
        user: "root".to_owned(),
        password: "wrong".to_owned(),
    });
    let error = Registry::connect(&config).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&etcd.endpoint(0)), "{message}");
    assert!(message.contains("authentication failed"), "{message}");

    // Without a client certificate the member refuses the connection.
    config.tls = Some(etcd.certs().files(false));
    assert!(Registry::connect(&config).await.is_err());
}
