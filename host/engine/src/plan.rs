//! Planning: taking ready work under leases and shaping it into jobs.
//!
//! A round reads, for the models it is asked to look at, the objects whose
//! policies, teardown or sync are due, leases them, splits them into
//! cohorts and hands each cohort to the lane of the service that runs it.
//! Work that cannot start yet (it links to an object whose own work is
//! still running) is not leased: the round names its model, and it is
//! looked at again as soon as something commits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use syncplane_core::{BackendCode, Core, Object, Registry, Work, field};

use crate::error::Result;
use crate::job::Job;
use crate::lease::WorkSource;
use crate::policy::awaits_policies;
use crate::runner::{Item, Phase, Runner};
use crate::steps::StepTable;

/// The service a job runs for when no step is involved.
const CORE: &str = "core";

/// Which models a round looks at.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// Every model.
    pub all: bool,
    /// Deleted objects of models no step serves are looked for too.
    pub purge_scan: bool,
    /// These models, when not `all`.
    pub models: HashSet<String>,
}

impl Scope {
    /// Every model, purges included.
    pub(crate) fn everything() -> Self {
        Scope {
            all: true,
            purge_scan: true,
            models: HashSet::new(),
        }
    }

    /// Whether the scope asks for nothing.
    pub(crate) fn is_empty(&self) -> bool {
        !self.all && !self.purge_scan && self.models.is_empty()
    }

    pub(crate) fn contains(&self, model: &str) -> bool {
        self.all || self.models.contains(model)
    }

    /// Adds `other` to the scope.
    pub(crate) fn merge(&mut self, other: Scope) {
        self.all |= other.all;
        self.purge_scan |= other.purge_scan;
        self.models.extend(other.models);
    }
}

/// How many more objects each service may take on.
pub(crate) enum Budget {
    /// One budget for every service (a single pass).
    Shared(usize),
    /// Each service may hold `window` objects at once.
    PerService {
        window: usize,
        held: HashMap<String, usize>,
    },
}

impl Budget {
    fn room(&self, service: &str) -> usize {
        match self {
            Budget::Shared(left) => *left,
            Budget::PerService { window, held } => {
                window.saturating_sub(held.get(service).copied().unwrap_or(0))
            }
        }
    }

    fn spend(&mut self, service: &str, n: usize) {
        match self {
            Budget::Shared(left) => *left = left.saturating_sub(n),
            Budget::PerService { held, .. } => *held.entry(service.to_owned()).or_default() += n,
        }
    }
}

/// Which kinds of work a round takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stages {
    pub policies: bool,
    pub steps: bool,
}

impl Stages {
    pub(crate) const ALL: Stages = Stages {
        policies: true,
        steps: true,
    };
}

/// What a round took.
#[derive(Default)]
pub(crate) struct Round {
    /// Jobs by the service whose lane runs them.
    pub jobs: Vec<(String, Job)>,
    /// Deleted objects no step serves, leased, to purge.
    pub purges: Vec<Object>,
    /// Models with work that was left: to look at after the next commit.
    pub waiting: HashSet<String>,
    /// Whether a take came back full: more may be ready right now.
    pub more: bool,
    /// When the earliest lease of another host on work left out ends.
    pub busy_until_ms: Option<i64>,
    /// Every object the round leased, whatever became of it: released
    /// if the round fails before its jobs are handed out.
    leased: Vec<i64>,
}

impl Round {
    /// Objects the round took.
    pub(crate) fn objects(&self) -> usize {
        self.purges.len() + self.jobs.iter().map(|(_, j)| j.ids().len()).sum::<usize>()
    }
}

/// Plans rounds over one step table.
pub(crate) struct Planner<'a> {
    pub core: &'a Core,
    pub leases: &'a dyn WorkSource,
    pub table: &'a Arc<StepTable>,
    pub registry: &'a Registry,
    pub runner: &'a Runner,
    /// The most objects one read takes.
    pub chunk: usize,
}

impl Planner<'_> {
    /// Takes the work `scope` asks for, within `budget`.
    ///
    /// # Errors
    ///
    /// When the store fails; what was leased is released then.
    pub(crate) async fn round(
        &self,
        scope: &Scope,
        budget: &mut Budget,
        stages: Stages,
    ) -> Result<Round> {
        let mut round = Round::default();
        let result = self.fill(scope, budget, stages, &mut round).await;
        if result.is_err() {
            // Taken for jobs, purges, or a cohort not built yet when a
            // later read failed: none of it will run this round.
            self.leases.release(&round.leased);
        }
        result.map(|()| round)
    }

    async fn fill(
        &self,
        scope: &Scope,
        budget: &mut Budget,
        stages: Stages,
        round: &mut Round,
    ) -> Result<()> {
        if stages.policies {
            for model in self.table.policed_models() {
                if !scope.contains(model) {
                    continue;
                }
                let policies = self.table.policies(model);
                let service = policies.first().map_or(CORE, |p| p.service.as_str());
                for object in self
                    .take(model, Work::Policy, service, budget, round)
                    .await?
                {
                    round.jobs.push((
                        service.to_owned(),
                        Job::Policy {
                            object,
                            policies: policies.to_vec(),
                            clock: Arc::clone(&self.runner.clock),
                        },
                    ));
                }
            }
        }
        if !stages.steps {
            return Ok(());
        }
        if scope.purge_scan {
            for model in self.registry.schema().models() {
                if model.is_abstract() || self.table.serves(&model.name) {
                    continue;
                }
                for object in self
                    .take(&model.name, Work::Teardown, CORE, budget, round)
                    .await?
                {
                    round.purges.push(object);
                }
            }
        }
        let order = self.table.order();
        for (phase, work, models) in [
            (
                Phase::Delete,
                Work::Teardown,
                order.iter().rev().collect::<Vec<_>>(),
            ),
            (Phase::Sync, Work::Sync, order.iter().collect()),
        ] {
            let mut objects = Vec::new();
            for model in models {
                if !scope.contains(model) {
                    continue;
                }
                let service = self
                    .table
                    .steps(model)
                    .first()
                    .map_or(CORE, |s| s.service.as_str());
                objects.extend(self.take(model, work, service, budget, round).await?);
            }
            for cohort in self.cohorts(objects, phase, round).await? {
                let service = cohort
                    .first()
                    .and_then(|w| self.table.steps(&w.object.model).first())
                    .map_or(CORE, |s| s.service.as_str());
                round.jobs.push((
                    service.to_owned(),
                    Job::Cohort {
                        phase,
                        items: cohort,
                        runner: self.runner.clone(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Takes due work of one model for `service`, within its budget;
    /// objects still waiting for their policies are given back.
    async fn take(
        &self,
        model: &str,
        work: Work,
        service: &str,
        budget: &mut Budget,
        round: &mut Round,
    ) -> Result<Vec<Object>> {
        let room = budget.room(service).min(self.chunk);
        if room == 0 {
            round.waiting.insert(model.to_owned());
            return Ok(Vec::new());
        }
        let taken = self.leases.take(model, work, room as u32).await?;
        if taken.more {
            round.waiting.insert(model.to_owned());
            round.more = true;
        }
        if taken.busy {
            // Changed again while its work runs: looked at after the commit,
            // or the change would wait for some unrelated wake-up.
            round.waiting.insert(model.to_owned());
        }
        if let Some(until) = taken.busy_until_ms {
            round.busy_until_ms = Some(round.busy_until_ms.map_or(until, |u| u.min(until)));
        }
        let (ready, unpoliced): (Vec<Object>, Vec<Object>) = taken
            .objects
            .into_iter()
            .partition(|o| work == Work::Policy || !awaits_policies(self.table, o));
        let back: Vec<i64> = unpoliced.iter().map(|o| o.id).collect();
        self.leases.release(&back);
        round.leased.extend(ready.iter().map(|o| o.id));
        budget.spend(service, ready.len());
        Ok(ready)
    }

    /// Splits objects into cohorts of [`Item`]s, in the order they must
    /// run. A cohort that must wait for an object whose own work is
    /// running (leased) is given back, its models noted in `round`.
    async fn cohorts(
        &self,
        objects: Vec<Object>,
        phase: Phase,
        round: &mut Round,
    ) -> Result<Vec<Vec<Item>>> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let mut link_columns: HashMap<String, Vec<String>> = HashMap::new();
        let mut nodes = Vec::with_capacity(objects.len());
        for object in &objects {
            let columns = link_columns.entry(object.model.clone()).or_insert_with(|| {
                self.registry
                    .schema()
                    .all_fields(&object.model)
                    .into_iter()
                    .filter(|f| f.link_target().is_some() && !f.is_many())
                    .map(|f| f.column_name())
                    .collect()
            });
            nodes.push(crate::cohort::Node {
                id: object.id,
                rank: self.table.rank(&object.model),
                links: columns.iter().filter_map(|c| object.int_field(c)).collect(),
            });
        }
        let in_round: HashSet<i64> = nodes.iter().map(|n| n.id).collect();
        // Why an object must wait for something outside the round: a
        // linked object that is not in sync (sync), or an object still
        // linking to it (teardown). `Busy` when that object's own work is
        // running: then the object waits without being deferred.
        let mut outside: HashMap<i64, Wait> = HashMap::new();
        let mut waits: HashMap<i64, Wait> = HashMap::new();
        match phase {
            Phase::Sync => {
                for node in &nodes {
                    for target in &node.links {
                        if in_round.contains(target) || outside.contains_key(target) {
                            continue;
                        }
                        let wait = if self.leases.is_leased(*target) {
                            Wait::Busy
                        } else {
                            self.blocking(*target).await?.map_or(Wait::None, Wait::On)
                        };
                        outside.insert(*target, wait);
                    }
                }
            }
            Phase::Delete => {
                let mut referrers = Vec::new();
                for object in &objects {
                    if let Some((model, id)) = self.core.referrer(object, &in_round).await? {
                        let wait = if self.leases.is_leased(id) {
                            Wait::Busy
                        } else {
                            referrers.push((object.id, id));
                            Wait::On(format!("{model} {id}: it still links here"))
                        };
                        waits.insert(object.id, wait);
                    }
                }
                let ids: Vec<i64> = referrers.iter().map(|(_, id)| *id).collect();
                let elsewhere = self.busy_elsewhere(&ids, round).await?;
                for (object, referrer) in referrers {
                    if elsewhere.contains(&referrer) {
                        waits.insert(object, Wait::Busy);
                    }
                }
            }
        }
        if phase == Phase::Sync {
            // Work running on another host is waited for as work running
            // here is: its commit is announced to every host.
            let ids: Vec<i64> = outside
                .iter()
                .filter(|(_, wait)| matches!(wait, Wait::On(_)))
                .map(|(id, _)| *id)
                .collect();
            for id in self.busy_elsewhere(&ids, round).await? {
                outside.insert(id, Wait::Busy);
            }
        }
        let groups = crate::cohort::cohorts(&nodes);
        let mut slots: Vec<Option<(Object, crate::cohort::Node)>> =
            objects.into_iter().zip(nodes).map(Some).collect();
        let mut out = Vec::with_capacity(groups.len());
        let mut given_back = Vec::new();
        for group in groups {
            let mut cohort = Vec::with_capacity(group.len());
            let mut busy = false;
            for i in group {
                let Some((object, node)) = slots[i].take() else {
                    continue;
                };
                let wait = waits.remove(&object.id).unwrap_or_else(|| {
                    node.links
                        .iter()
                        .map(|t| outside.get(t).cloned().unwrap_or(Wait::None))
                        .max()
                        .unwrap_or(Wait::None)
                });
                let waiting_on = match wait {
                    Wait::None => None,
                    Wait::On(reason) => Some(reason),
                    Wait::Busy => {
                        busy = true;
                        None
                    }
                };
                cohort.push(Item {
                    object,
                    links: node.links,
                    waiting_on,
                });
            }
            if busy {
                for item in &cohort {
                    round.waiting.insert(item.object.model.clone());
                    given_back.push(item.object.id);
                }
                continue;
            }
            if phase == Phase::Delete {
                cohort.reverse();
            }
            out.push(cohort);
        }
        self.leases.release(&given_back);
        Ok(out)
    }

    /// Why the object `id` (outside the round) holds up objects linking
    /// to it, if it does: a step serves it and it is not in sync.
    /// Of `ids`, those whose work another host runs now; the earliest end
    /// of their leases is noted in `round`, to look again then should that
    /// host die before it commits.
    async fn busy_elsewhere(&self, ids: &[i64], round: &mut Round) -> Result<HashSet<i64>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let held = self.leases.held_elsewhere(ids).await?;
        if let Some(until) = held.iter().map(|(_, until)| *until).min() {
            round.busy_until_ms = Some(round.busy_until_ms.map_or(until, |u| u.min(until)));
        }
        Ok(held.into_iter().map(|(id, _)| id).collect())
    }

    async fn blocking(&self, id: i64) -> Result<Option<String>> {
        let Some(target) = self.core.get(id).await? else {
            return Ok(None);
        };
        if !self.table.serves(&target.model) || target.flag(field::NO_SYNC) || target.is_deleted() {
            return Ok(None);
        }
        let failed = target.backend_code() == BackendCode::Failed;
        if !failed && !target.sync.is_dirty() {
            return Ok(None);
        }
        let status = target.str_field(field::BACKEND_STATUS).unwrap_or_default();
        Ok(Some(if status.is_empty() {
            format!("{} {}", target.model, target.id)
        } else {
            format!("{} {}: {status}", target.model, target.id)
        }))
    }
}

/// What an object waits for outside its round; ordered so that the
/// strongest reason wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Wait {
    /// Nothing.
    None,
    /// An object that is not in sync: the object is deferred, naming it.
    On(String),
    /// An object whose own work is running: the object waits for its commit.
    Busy,
}

/// The objects of `round` grouped by service, for logs.
pub(crate) fn per_service(round: &Round) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for (service, job) in &round.jobs {
        *out.entry(service.as_str()).or_default() += job.ids().len();
    }
    out
}
