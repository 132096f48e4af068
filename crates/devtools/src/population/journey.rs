//! One person's journey, phase by phase: referral and decision, the first meeting (plan and
//! baseline), contacts with their appointments and onward connections, the connections'
//! outcomes, follow-up, closure, and sometimes a repeat referral.
//!
//! Every phase draws from the person's own generator, and the draws happen in the order the
//! code reads, so a seed always makes the same journey: reorder nothing here without meaning
//! to change every demo population.

use app::access::Role;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::*;

use crate::population::{
    DirectoryIndex, FAMILY, GIVEN, GOALS, PRACTICES, PopulationOptions, Rng, Step, TOWNS,
    WHAT_MATTERS, answers, nhs_number, noon,
};

/// The commands of client `n`'s journey, in order, none after `options.today`.
pub(crate) fn journey(
    n: u64,
    options: &PopulationOptions,
    teams: &[(TeamId, Vec<StaffId>, StaffId)],
    referrer: StaffId,
    directory: &DirectoryIndex,
) -> (ClientId, Vec<Step>) {
    let rng = &mut Rng::new(options.seed, n);
    let mut journey = Journey::begin(rng, options.today, teams);
    let referral_id = journey.referral(rng, referrer);
    if journey.decide(rng, referral_id) {
        let plan = journey.plan(rng);
        let scored = journey.baseline(rng);
        let (disengages, open_connections) = journey.contacts(rng, directory, plan.shares_onward);
        journey.connection_outcomes(rng, open_connections);
        let follow_up = journey.follow_up(rng, &plan, &scored, disengages);
        let (closing, closed) = journey.closure(rng, follow_up, disengages);
        if !closed && !disengages {
            journey.next_appointment();
        }
        journey.repeat_referral(rng, closing, closed);
    }
    (journey.client, journey.steps)
}

/// A journey as it is built: who the person is and where, who holds their case, the day it
/// has reached, and its steps so far.
struct Journey<'a> {
    today: NaiveDate,
    client: ClientId,
    town: &'static str,
    district: &'static str,
    team: TeamId,
    /// The team's link workers.
    workers: &'a [StaffId],
    lead: StaffId,
    /// The link worker who holds the case now.
    worker: StaffId,
    received: NaiveDate,
    /// The referral's reasons, the main one first.
    reasons: Vec<NeedDomain>,
    /// The day of the latest meeting or contact.
    day: NaiveDate,
    steps: Vec<Step>,
}

/// What the first meeting settles for the phases after it.
struct Plan {
    first_meeting: NaiveDate,
    /// Whether the person agreed to share with onward services.
    shares_onward: bool,
    goals: Vec<GoalId>,
}

impl<'a> Journey<'a> {
    /// Who, where, which team and worker, and the day the referral arrives.
    fn begin(
        rng: &mut Rng,
        today: NaiveDate,
        teams: &'a [(TeamId, Vec<StaffId>, StaffId)],
    ) -> Journey<'a> {
        let client = ClientId(rng.uuid());
        let (town, district, team_index) = *rng.pick(TOWNS);
        let (team, workers, lead) = &teams[team_index % teams.len()];
        let worker = *rng.pick(workers);
        let received = today - Duration::days(rng.range(1, 365));
        Journey {
            today,
            client,
            town,
            district,
            team: *team,
            workers,
            lead: *lead,
            worker,
            received,
            reasons: Vec::new(),
            day: received,
            steps: Vec::new(),
        }
    }

    /// Adds a step unless it falls after today; says whether it did.
    fn push(
        &mut self,
        actor: StaffId,
        role: Role,
        at: DateTime<Utc>,
        command: CaseCommand,
    ) -> bool {
        if at.date_naive() <= self.today {
            self.steps.push(Step {
                actor,
                role,
                at,
                command,
            });
            true
        } else {
            false
        }
    }

    /// The person is registered and referred: by their practice (through the demo referrer) or
    /// by another source (recorded by the team lead).
    fn referral(&mut self, rng: &mut Rng, referrer: StaffId) -> ReferralId {
        let (source, reasons) = source_and_reasons(rng);
        self.reasons = reasons;
        let age = rng.weighted(&[(25, 10.0), (40, 15.0), (55, 20.0), (70, 30.0), (82, 25.0)])
            + rng.range(-7, 7);
        let born = self.today - Duration::days(age * 365 + rng.range(0, 364));
        let from_practice = matches!(source, ReferralSource::Gp | ReferralSource::PracticeStaff);
        let (intake_actor, intake_role) = if from_practice {
            (referrer, Role::Referrer)
        } else {
            (self.lead, Role::TeamLead)
        };
        let referral_id = ReferralId(rng.uuid());
        let family = *rng.pick(FAMILY);
        let (town, district) = (self.town, self.district);
        let postcode = format!("{district} {}XY", rng.range(1, 9));
        let intake = CaseCommand::Intake {
            client: Some(Box::new(ClientRegistered {
                client_id: self.client,
                personal: PersonalDetails {
                    given_name: (*rng.pick(GIVEN)).to_owned(),
                    family_name: family.to_owned(),
                    date_of_birth: Some(born),
                    nhs_number: nhs_number(rng),
                    phone: Some(format!("07700 900{:03}", rng.range(0, 999))),
                    email: None,
                    address: Some(format!("{} Church Street, {town}", rng.range(1, 120))),
                    postcode: Some(postcode.clone()),
                },
                area: town.to_owned(),
            })),
            referral: ReferralReceived {
                referral_id,
                source,
                referrer: Referrer {
                    staff_id: (intake_role == Role::Referrer).then_some(referrer),
                    name: None,
                    organisation: from_practice.then(|| (*rng.pick(PRACTICES)).to_owned()),
                },
                reasons: self.reasons.clone(),
                urgency: rng.weighted(&[
                    (Urgency::Routine, 80.0),
                    (Urgency::Soon, 17.0),
                    (Urgency::Urgent, 3.0),
                ]),
                received_on: self.received,
                note: None,
            },
        };
        self.push(intake_actor, intake_role, noon(self.received), intake);
        // Most people's demographics are recorded at the referral (equity reporting); some
        // decline or are never asked. Drawn from a generator of their own, so that the rest of
        // the demo population is what it was before demographics were recorded.
        let mut own = Rng::new(self.client.0.as_u128() as u64, 29);
        if own.range(0, 100) < 85 {
            let demographics = demographics(&mut own, postcode);
            self.push(
                intake_actor,
                intake_role,
                noon(self.received) + Duration::minutes(5),
                CaseCommand::RecordDemographics(DemographicsRecorded {
                    demographics,
                    reportable: ReportableDemographics::default(),
                }),
            );
        }
        referral_id
    }

    /// Triage: most referrals are accepted and assigned; some are declined or sent elsewhere.
    /// Says whether the case was opened (by today).
    fn decide(&mut self, rng: &mut Rng, referral_id: ReferralId) -> bool {
        let decided = noon(self.received + Duration::days(rng.range(0, 4)));
        let lead = self.lead;
        let refusal = match rng.weighted(&[(0, 86.0), (1, 9.0), (2, 5.0)]) {
            1 => Some(CaseCommand::DeclineReferral(ReferralDeclined {
                referral_id,
                reason: rng.weighted(&[
                    (DeclineReason::ClientDeclined, 4.0),
                    (DeclineReason::UnableToContact, 3.0),
                    (DeclineReason::NotEligible, 1.0),
                    (DeclineReason::NeedsClinicalService, 1.0),
                ]),
                note: None,
            })),
            2 => Some(CaseCommand::RedirectReferral(ReferralRedirected {
                referral_id,
                destination: Destination::Coded {
                    code: (*rng.pick(&[
                        "talking_therapies",
                        "community_mental_health",
                        "adult_social_care",
                    ]))
                    .to_owned(),
                },
                note: None,
            })),
            _ => None,
        };
        if let Some(refusal) = refusal {
            self.push(lead, Role::TeamLead, decided, refusal);
            return false;
        }
        let accept = CaseCommand::AcceptReferral(ReferralAccepted { referral_id });
        if !self.push(lead, Role::TeamLead, decided, accept) {
            return false;
        }
        let assign = CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: self.worker,
            team_id: self.team,
        });
        self.push(lead, Role::TeamLead, decided + Duration::hours(1), assign);
        true
    }

    /// The first meeting, days after the referral: consent, what matters, the needs and one or
    /// two goals.
    fn plan(&mut self, rng: &mut Rng) -> Plan {
        self.day = self.received + Duration::days(rng.range(3, 14));
        let (worker, at) = (self.worker, noon(self.day));
        let shares_onward = rng.chance(0.85);
        for (scope, p) in [
            (ConsentScope::ShareWithGp, 0.75),
            (
                ConsentScope::ShareWithOnwardServices,
                if shares_onward { 1.0 } else { 0.0 },
            ),
            (ConsentScope::Evaluation, 0.8),
        ] {
            if rng.chance(p) {
                let consent = CaseCommand::RecordConsent(ConsentRecorded {
                    scope,
                    services: vec![],
                    channel: None,
                });
                self.push(worker, Role::LinkWorker, at, consent);
            }
        }
        // About half agree to text reminders of their appointments (everyone here has a
        // mobile number), so the reminder outbox has people to remind. Drawn from a generator
        // of their own, so that the rest of the demo population is what it was before.
        let mut own = Rng::new(self.client.0.as_u128() as u64, 31);
        if own.chance(0.5) {
            let reminders = CaseCommand::RecordConsent(ConsentRecorded {
                scope: ConsentScope::ContactForReminders,
                services: vec![],
                channel: Some(ContactChannel::Sms),
            });
            self.push(worker, Role::LinkWorker, at, reminders);
        }
        let what_matters = CaseCommand::RecordWhatMatters(WhatMattersRecorded {
            text: (*rng.pick(WHAT_MATTERS)).to_owned(),
        });
        self.push(worker, Role::LinkWorker, at, what_matters);
        for need in self.reasons.clone() {
            let need = CaseCommand::IdentifyNeed(NeedIdentified { need, note: None });
            self.push(worker, Role::LinkWorker, at, need);
        }
        let goals: Vec<GoalId> = (0..rng.range(1, 2)).map(|_| GoalId(rng.uuid())).collect();
        for goal in &goals {
            let (description, need) = *rng.pick(GOALS);
            let goal = CaseCommand::SetGoal(GoalSet {
                goal_id: *goal,
                description: description.to_owned(),
                need: Some(need),
            });
            self.push(worker, Role::LinkWorker, at, goal);
        }
        Plan {
            first_meeting: self.day,
            shares_onward,
            goals,
        }
    }

    /// Baseline scores at the first meeting (and a loneliness scale for some of the lonely),
    /// and the meeting itself as a contact. Returns each instrument with its baseline total.
    fn baseline(&mut self, rng: &mut Rng) -> Vec<(Instrument, f64)> {
        let (worker, day) = (self.worker, self.day);
        let instrument = rng.weighted(&[
            (Instrument::Wemwbs, 70.0),
            (Instrument::Swemwbs, 20.0),
            (Instrument::Ons4, 10.0),
        ]);
        let baseline = match instrument {
            Instrument::Wemwbs => rng.normal(38.0, 7.0),
            Instrument::Swemwbs => rng.normal(19.0, 3.5),
            _ => rng.normal(18.0, 6.0),
        };
        let lonely = self.reasons.contains(&NeedDomain::LonelinessIsolation) && rng.chance(0.6);
        let mut scored = vec![(instrument, baseline)];
        if lonely {
            scored.push((Instrument::Ucla3, rng.normal(7.5, 1.2)));
        }
        for (instrument, total) in &scored {
            let assessment = CaseCommand::RecordAssessment(AssessmentRecorded {
                assessment_id: AssessmentId(rng.uuid()),
                instrument: *instrument,
                instrument_version: 1,
                timepoint: Timepoint::Baseline,
                mode: AdministrationMode::SelfCompleted,
                answers: answers(*instrument, *total, rng),
                licensor_score: None,
                administered_on: day,
            });
            self.push(worker, Role::LinkWorker, noon(day), assessment);
        }
        let meeting = CaseCommand::RecordContact(ContactRecorded {
            contact_id: ContactId(rng.uuid()),
            mode: rng.weighted(&[
                (ContactMode::FaceToFace, 60.0),
                (ContactMode::HomeVisit, 30.0),
                (ContactMode::Phone, 10.0),
            ]),
            minutes: rng.range(40, 75) as u32,
            contacted_at: noon(day) - Duration::minutes(30),
            note: None,
        });
        self.push(worker, Role::LinkWorker, noon(day), meeting);
        scored
    }

    /// Contacts: 6 to 12, about weekly, each an appointment or a call; onward connections
    /// (or gaps) from the second contact on, one per need; a few cases move to another worker;
    /// the person may drift away. Returns whether they disengaged, and the connections made
    /// with the day their outcome is known.
    fn contacts(
        &mut self,
        rng: &mut Rng,
        directory: &DirectoryIndex,
        shares_onward: bool,
    ) -> (bool, Vec<(ConnectionId, DateTime<Utc>)>) {
        let contacts = rng.range(6, 12);
        let disengages = rng.chance(0.1);
        let mut open_connections = Vec::new();
        for k in 0..contacts {
            self.day += Duration::days(rng.range(5, 10));
            if self.day > self.today || (disengages && k >= 3) {
                break;
            }
            let at = noon(self.day);
            self.appointment_or_call(rng, at);
            if (1..=3).contains(&k)
                && let Some(&need) = self.reasons.get(k as usize - 1)
                && let Some(connection) = self.connect(rng, directory, need, shares_onward, at)
            {
                open_connections.push(connection);
            }
            if k == 4 && rng.chance(0.03) {
                self.transfer(at);
            }
        }
        (disengages, open_connections)
    }

    /// A booked appointment (attended, missed or cancelled), or else a phone call.
    fn appointment_or_call(&mut self, rng: &mut Rng, at: DateTime<Utc>) {
        let worker = self.worker;
        if rng.chance(0.6) {
            let appointment_id = AppointmentId(rng.uuid());
            let mode = rng.weighted(&[
                (ContactMode::FaceToFace, 55.0),
                (ContactMode::HomeVisit, 20.0),
                (ContactMode::Video, 10.0),
                (ContactMode::Group, 15.0),
            ]);
            let booking = CaseCommand::BookAppointment(AppointmentBooked {
                appointment_id,
                scheduled_for: at,
                mode,
            });
            self.push(worker, Role::LinkWorker, at - Duration::days(4), booking);
            let outcome = match rng.weighted(&[(0, 86.0), (1, 9.0), (2, 5.0)]) {
                1 => CaseCommand::RecordDidNotAttend(AppointmentNotAttended { appointment_id }),
                2 => CaseCommand::CancelAppointment(AppointmentCancelled {
                    appointment_id,
                    cancelled_by: CancelledBy::Client,
                    note: None,
                }),
                _ => CaseCommand::RecordAttendance(AppointmentAttended { appointment_id }),
            };
            self.push(worker, Role::LinkWorker, at + Duration::hours(1), outcome);
        } else {
            let call = CaseCommand::RecordContact(ContactRecorded {
                contact_id: ContactId(rng.uuid()),
                mode: ContactMode::Phone,
                minutes: rng.range(10, 45) as u32,
                contacted_at: at,
                note: None,
            });
            self.push(worker, Role::LinkWorker, at, call);
        }
    }

    /// For most cases still open today, the next appointment, booked today for a day in the
    /// coming week (so there are reminders to send). Drawn from a generator of the person's
    /// own, so that the rest of the demo population is what it was before.
    fn next_appointment(&mut self) {
        let mut own = Rng::new(self.client.0.as_u128() as u64, 37);
        if !own.chance(0.8) {
            return;
        }
        let day = self.today + Duration::days(own.range(1, 7));
        let at = noon(day) - Duration::hours(own.range(0, 2));
        let booking = CaseCommand::BookAppointment(AppointmentBooked {
            appointment_id: AppointmentId(own.uuid()),
            scheduled_for: at,
            mode: own.weighted(&[
                (ContactMode::FaceToFace, 60.0),
                (ContactMode::HomeVisit, 25.0),
                (ContactMode::Video, 15.0),
            ]),
        });
        self.push(self.worker, Role::LinkWorker, noon(self.today), booking);
    }

    /// An onward connection for `need` to a service of the directory in the person's town (only
    /// signposting without consent to share), or a service gap when none fits or the person
    /// cannot use it. Returns the connection with the day its outcome is known.
    fn connect(
        &mut self,
        rng: &mut Rng,
        directory: &DirectoryIndex,
        need: NeedDomain,
        shares_onward: bool,
        at: DateTime<Utc>,
    ) -> Option<(ConnectionId, DateTime<Utc>)> {
        let worker = self.worker;
        let services = directory.get(&(need, self.town.to_owned()));
        let kind = rng.weighted(&[
            (ConnectionKind::Signposted, 40.0),
            (ConnectionKind::Referred, 40.0),
            (ConnectionKind::WarmHandover, 15.0),
            (ConnectionKind::Accompanied, 5.0),
        ]);
        let kind = if shares_onward {
            kind
        } else {
            ConnectionKind::Signposted
        };
        let choice = services.and_then(|s| {
            let fits: Vec<_> = s
                .iter()
                .filter(|(_, takes)| *takes || kind == ConnectionKind::Signposted)
                .collect();
            (!fits.is_empty()).then(|| *rng.pick(&fits))
        });
        match choice {
            Some((service, _)) if !rng.chance(0.05) => {
                let connection_id = ConnectionId(rng.uuid());
                let connection = CaseCommand::MakeConnection(OnwardConnectionMade {
                    connection_id,
                    service_id: *service,
                    need,
                    kind,
                });
                self.push(
                    worker,
                    Role::LinkWorker,
                    at + Duration::hours(2),
                    connection,
                );
                Some((connection_id, at + Duration::days(14)))
            }
            found => {
                let gap = CaseCommand::RecordServiceGap(ServiceGapRecorded {
                    gap_id: GapId(rng.uuid()),
                    need,
                    area: self.town.to_owned(),
                    reason: if found.is_none() {
                        GapReason::NoServiceExists
                    } else {
                        rng.weighted(&[
                            (GapReason::WaitingListTooLong, 3.0),
                            (GapReason::Transport, 3.0),
                            (GapReason::Cost, 1.0),
                            (GapReason::NotAccessible, 1.0),
                        ])
                    },
                    note: None,
                });
                self.push(worker, Role::LinkWorker, at + Duration::hours(2), gap);
                None
            }
        }
    }

    /// The case moves to another worker in the team, when there is one.
    fn transfer(&mut self, at: DateTime<Utc>) {
        let Some(&other) = self.workers.iter().find(|w| **w != self.worker) else {
            return;
        };
        let transfer = CaseCommand::TransferCase(TransferCase {
            to_link_worker_id: other,
            team_id: self.team,
            reason: TransferReason::Capacity,
        });
        self.push(self.lead, Role::TeamLead, at + Duration::hours(3), transfer);
        self.worker = other;
    }

    /// What came of each onward connection, two weeks after it was made.
    fn connection_outcomes(
        &mut self,
        rng: &mut Rng,
        open_connections: Vec<(ConnectionId, DateTime<Utc>)>,
    ) {
        for (connection_id, when) in open_connections {
            let outcome = rng.weighted(&[
                (ConnectionOutcome::Attended, 35.0),
                (ConnectionOutcome::Engaged, 28.0),
                (ConnectionOutcome::NotTakenUp, 15.0),
                (ConnectionOutcome::WaitingList, 10.0),
                (ConnectionOutcome::Declined, 6.0),
                (ConnectionOutcome::NotEligible, 3.0),
                (ConnectionOutcome::ServiceFull, 3.0),
            ]);
            let recorded = CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
                connection_id,
                outcome,
                waiting_weeks: (outcome == ConnectionOutcome::WaitingList)
                    .then(|| rng.range(2, 16) as u32),
            });
            self.push(self.worker, Role::LinkWorker, when, recorded);
        }
    }

    /// Follow-up scores 8 to 12 weeks after the baseline, with a realistic change, and the goals
    /// reviewed; for those still engaged once the day has come. Returns the follow-up day.
    fn follow_up(
        &mut self,
        rng: &mut Rng,
        plan: &Plan,
        scored: &[(Instrument, f64)],
        disengages: bool,
    ) -> NaiveDate {
        let follow_up = plan.first_meeting + Duration::days(rng.range(56, 84));
        if disengages || follow_up > self.today {
            return follow_up;
        }
        let worker = self.worker;
        for (instrument, total) in scored {
            let change = match instrument {
                Instrument::Wemwbs => rng.normal(6.0, 7.0),
                Instrument::Swemwbs => rng.normal(2.5, 3.0),
                Instrument::Ucla3 => rng.normal(-1.2, 1.2),
                _ => rng.normal(3.0, 4.0),
            };
            let assessment = CaseCommand::RecordAssessment(AssessmentRecorded {
                assessment_id: AssessmentId(rng.uuid()),
                instrument: *instrument,
                instrument_version: 1,
                timepoint: Timepoint::FollowUp,
                mode: AdministrationMode::SelfCompleted,
                answers: answers(*instrument, total + change, rng),
                licensor_score: None,
                administered_on: follow_up,
            });
            self.push(worker, Role::LinkWorker, noon(follow_up), assessment);
        }
        for goal in &plan.goals {
            let review = CaseCommand::ReviewGoal(GoalReviewed {
                goal_id: *goal,
                progress: rng.weighted(&[
                    (GoalProgress::Achieved, 45.0),
                    (GoalProgress::SomeProgress, 40.0),
                    (GoalProgress::NotStarted, 10.0),
                    (GoalProgress::NoLongerRelevant, 5.0),
                ]),
                note: None,
            });
            self.push(worker, Role::LinkWorker, noon(follow_up), review);
        }
        follow_up
    }

    /// The case closes: four weeks after the last contact for those who drifted away, else
    /// days after the follow-up. Returns the closing day and whether it is past.
    fn closure(
        &mut self,
        rng: &mut Rng,
        follow_up: NaiveDate,
        disengages: bool,
    ) -> (NaiveDate, bool) {
        let closing = if disengages {
            self.day + Duration::days(28)
        } else {
            follow_up.max(self.day) + Duration::days(rng.range(1, 10))
        };
        let close = CaseCommand::CloseCase(CaseClosed {
            reason: if disengages {
                ClosureReason::Disengaged
            } else {
                rng.weighted(&[
                    (ClosureReason::GoalsMet, 50.0),
                    (ClosureReason::ConnectedOnward, 35.0),
                    (ClosureReason::ClientWithdrew, 8.0),
                    (ClosureReason::MovedAway, 4.0),
                    (ClosureReason::Deceased, 1.0),
                ])
            },
            note: None,
        });
        let closed = self.push(self.worker, Role::LinkWorker, noon(closing), close);
        (closing, closed)
    }

    /// Some come back months later, referring themselves for the same main reason: accepted
    /// and given back to the worker who last held the case.
    fn repeat_referral(&mut self, rng: &mut Rng, closing: NaiveDate, closed: bool) {
        let again = closing + Duration::days(rng.range(30, 150));
        if !(closed && again <= self.today && rng.chance(0.06)) {
            return;
        }
        let referral_id = ReferralId(rng.uuid());
        let lead = self.lead;
        let intake = CaseCommand::Intake {
            client: None,
            referral: ReferralReceived {
                referral_id,
                source: ReferralSource::SelfReferral,
                referrer: Referrer {
                    staff_id: None,
                    name: None,
                    organisation: None,
                },
                reasons: vec![self.reasons[0]],
                urgency: Urgency::Routine,
                received_on: again,
                note: None,
            },
        };
        self.push(lead, Role::TeamLead, noon(again), intake);
        let accept = CaseCommand::AcceptReferral(ReferralAccepted { referral_id });
        self.push(
            lead,
            Role::TeamLead,
            noon(again) + Duration::hours(2),
            accept,
        );
        let assign = CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: self.worker,
            team_id: self.team,
        });
        self.push(
            lead,
            Role::TeamLead,
            noon(again) + Duration::hours(3),
            assign,
        );
    }
}

/// Where the referral comes from (mostly GPs and practice staff) and why: one to three
/// reasons, led by mental wellbeing, isolation and money.
fn source_and_reasons(rng: &mut Rng) -> (ReferralSource, Vec<NeedDomain>) {
    let source = rng.weighted(&[
        (ReferralSource::Gp, 55.0),
        (ReferralSource::PracticeStaff, 12.0),
        (ReferralSource::OtherHealthProfessional, 8.0),
        (ReferralSource::SocialCare, 5.0),
        (ReferralSource::Hospital, 3.0),
        (ReferralSource::VoluntarySector, 6.0),
        (ReferralSource::CommunityConnector, 3.0),
        (ReferralSource::SelfReferral, 8.0),
    ]);
    let reason_weights = [
        (NeedDomain::MentalWellbeing, 30.0),
        (NeedDomain::LonelinessIsolation, 25.0),
        (NeedDomain::MoneyBenefitsDebt, 14.0),
        (NeedDomain::Housing, 6.0),
        (NeedDomain::PhysicalActivity, 7.0),
        (NeedDomain::LongTermCondition, 6.0),
        (NeedDomain::CarerSupport, 4.0),
        (NeedDomain::Bereavement, 4.0),
        (NeedDomain::Employment, 2.0),
        (NeedDomain::SubstanceUse, 1.0),
        (NeedDomain::Other, 1.0),
    ];
    let mut reasons = vec![rng.weighted(&reason_weights)];
    for _ in 0..rng.weighted(&[(0, 50.0), (1, 35.0), (2, 15.0)]) {
        let more = rng.weighted(&reason_weights);
        if !reasons.contains(&more) {
            reasons.push(more);
        }
    }
    (source, reasons)
}

/// What a demo person says about themselves: Mendip's mix (mostly White British, roughly as the
/// 2021 census has it [U: not checked]), a few who need an interpreter, a registered practice
/// (the codes are shaped like Somerset's practices' ODS codes; illustrative, not checked).
fn demographics(rng: &mut Rng, postcode: String) -> Demographics {
    use domain::{EthnicCategory as E, GenderIdentity as G, Sex as S};
    let female = rng.range(0, 100) < 58;
    let ethnic = rng.weighted(&[
        (E::WhiteBritish, 86.0),
        (E::AnyOtherWhiteBackground, 5.0),
        (E::WhiteIrish, 1.0),
        (E::AnyOtherMixedBackground, 1.5),
        (E::Indian, 1.0),
        (E::Bangladeshi, 0.5),
        (E::African, 1.0),
        (E::Chinese, 0.5),
        (E::NotStated, 3.5),
    ]);
    let interpreter = ethnic == E::AnyOtherWhiteBackground && rng.range(0, 100) < 40;
    Demographics {
        sex: Some(if female { S::Female } else { S::Male }),
        gender_identity: Some(rng.weighted(&[
            (if female { G::Female } else { G::Male }, 96.0),
            (G::NonBinary, 1.0),
            (G::NotStated, 3.0),
        ])),
        ethnic_category: Some(ethnic),
        preferred_language: Some(if interpreter { "Polish" } else { "English" }.to_owned()),
        interpreter_needed: Some(interpreter),
        communication_needs: None,
        gp_practice: Some(
            (*rng.pick(&["L85016", "L85020", "L85025", "L85033", "L85061"])).to_owned(),
        ),
        postcode: Some(postcode),
    }
}
