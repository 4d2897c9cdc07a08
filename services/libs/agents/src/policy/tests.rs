use std::collections::BTreeMap;

use super::*;
use crate::load::Held;
use crate::shift::Shift;

const NOW: i64 = 1_796_601_600_000;

fn agent(id: &str, tier: Tier, capacity: u32, skills: &[(&str, u8)]) -> Agent {
    Agent {
        id: id.into(),
        name: id.to_uppercase(),
        departments: vec!["accounts".into()],
        skills: skills.iter().map(|(k, l)| ((*k).into(), *l)).collect(),
        languages: vec!["zh".into()],
        channels: vec![],
        tier,
        capacity,
        shift: Shift::default(),
        status: Status::Online,
    }
}

fn load(open: usize, weight: f32) -> Load {
    Load {
        tickets: (0..open)
            .map(|i| {
                let held = Held {
                    weight,
                    since_ms: NOW,
                    started: false,
                    start_by_ms: None,
                };
                (format!("t{i}"), held)
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

fn need() -> Need<'static> {
    Need {
        department: "accounts",
        problem_type: "登录认证",
        language: "zh-CN",
        channel: "web",
        priority: Priority::Normal,
        ..Need::default()
    }
}

fn chosen(outcome: Outcome) -> Choice {
    match outcome {
        Outcome::Chosen(c) => c,
        Outcome::Waiting(why) => panic!("no one chosen: {why}"),
    }
}

#[test]
fn the_least_loaded_skilled_agent_gets_it_and_the_reason_says_why() {
    let (a, b, c) = (
        agent("a", Tier::L1, 8, &[("登录认证", 4)]),
        agent("b", Tier::L1, 8, &[("登录认证", 2)]),
        // Idle, but without the skill: skilled agents who fit come first.
        agent("c", Tier::L1, 8, &[]),
    );
    let (la, lb, lc) = (load(3, 1.0), load(5, 1.0), load(0, 1.0));
    let candidates = [
        Candidate {
            agent: &a,
            load: &la,
        },
        Candidate {
            agent: &b,
            load: &lb,
        },
        Candidate {
            agent: &c,
            load: &lc,
        },
    ];
    let choice = chosen(choose(&need(), &candidates, NOW));
    assert_eq!(choice.agent, "a");
    assert!(choice.skilled);
    assert_eq!(
        choice.reason,
        "skill 登录认证 4/5, 3 of 8 open, least loaded of 2 who fit"
    );
}

#[test]
fn load_is_weighted_by_priority_and_measured_against_capacity() {
    let (a, b) = (
        agent("a", Tier::L1, 4, &[("登录认证", 3)]),
        agent("b", Tier::L1, 8, &[("登录认证", 3)]),
    );
    // a: 2 tickets of 4; b: 3 urgent tickets of 8, 9 of 8 weighted: a is less loaded.
    let (la, lb) = (load(2, 1.0), load(3, 3.0));
    let candidates = [
        Candidate {
            agent: &a,
            load: &la,
        },
        Candidate {
            agent: &b,
            load: &lb,
        },
    ];
    assert_eq!(chosen(choose(&need(), &candidates, NOW)).agent, "a");
    // The same three tickets at normal priority weigh less than a's half: b then.
    let lb = load(3, 1.0);
    let candidates = [
        Candidate {
            agent: &a,
            load: &la,
        },
        Candidate {
            agent: &b,
            load: &lb,
        },
    ];
    assert_eq!(chosen(choose(&need(), &candidates, NOW)).agent, "b");
}

#[test]
fn the_customers_last_resolver_is_preferred_only_within_capacity() {
    let (a, b) = (
        agent("a", Tier::L1, 8, &[("登录认证", 4)]),
        agent("b", Tier::L1, 3, &[("登录认证", 4)]),
    );
    let (la, lb) = (load(0, 1.0), load(2, 1.0));
    let candidates = [
        Candidate {
            agent: &a,
            load: &la,
        },
        Candidate {
            agent: &b,
            load: &lb,
        },
    ];
    let back = Need {
        last_resolver: Some("b"),
        ..need()
    };
    let choice = chosen(choose(&back, &candidates, NOW));
    assert_eq!(
        (choice.agent.as_str(), choice.reason.as_str()),
        (
            "b",
            "skill 登录认证 4/5, 2 of 3 open, resolved this customer's last ticket"
        )
    );
    let full = load(3, 1.0);
    let candidates = [
        Candidate {
            agent: &a,
            load: &la,
        },
        Candidate {
            agent: &b,
            load: &full,
        },
    ];
    assert_eq!(chosen(choose(&back, &candidates, NOW)).agent, "a");
}

#[test]
fn escalated_tickets_go_to_seniors_only_and_wait_when_none_fits() {
    let (junior, senior) = (
        agent("j", Tier::L2, 8, &[("登录认证", 5)]),
        agent("s", Tier::L3, 2, &[("accounts", 3)]),
    );
    let (idle, full) = (load(0, 1.0), load(2, 1.0));
    let escalated = Need {
        escalated: true,
        ..need()
    };
    let candidates = [
        Candidate {
            agent: &junior,
            load: &idle,
        },
        Candidate {
            agent: &senior,
            load: &idle,
        },
    ];
    let choice = chosen(choose(&escalated, &candidates, NOW));
    assert_eq!(choice.agent, "s");
    assert!(!choice.skilled);
    assert_eq!(
        choice.reason,
        "skill accounts 3/5, 0 of 2 open, the only one who fits, senior (L3) for an escalated ticket"
    );
    let candidates = [
        Candidate {
            agent: &junior,
            load: &idle,
        },
        Candidate {
            agent: &senior,
            load: &full,
        },
    ];
    assert_eq!(
        choose(&escalated, &candidates, NOW),
        Outcome::Waiting(
            "no one in accounts fits: of 2, 1 not senior (L3) for an escalated ticket, 1 at capacity"
                .into()
        )
    );
}

#[test]
fn language_channel_status_shift_and_the_agent_left_behind_rule_agents_out() {
    let mut english = agent("en", Tier::L1, 8, &[]);
    english.languages = vec!["en".into()];
    let mut phone = agent("ph", Tier::L1, 8, &[]);
    phone.channels = vec!["phone".into()];
    let mut away = agent("aw", Tier::L1, 8, &[]);
    away.status = Status::Away;
    let mut night = agent("ni", Tier::L1, 8, &[]);
    night.shift = Shift {
        time_zone: "UTC".into(),
        hours: "mon-sun 22:00-06:00".into(),
    };
    night.validate().expect("valid");
    let leaving = agent("le", Tier::L1, 8, &[]);
    let mut elsewhere = agent("el", Tier::L1, 8, &[]);
    elsewhere.departments = vec!["billing".into()];
    let idle = load(0, 1.0);
    let all = [&english, &phone, &away, &night, &leaving, &elsewhere];
    let candidates: Vec<Candidate<'_>> = all
        .iter()
        .map(|a| Candidate {
            agent: a,
            load: &idle,
        })
        .collect();
    let moving = Need {
        not: Some("le"),
        ..need()
    };
    // NOW is Monday 00:00 UTC: the night shift is on; at noon it is not.
    assert_eq!(chosen(choose(&moving, &candidates, NOW)).agent, "ni");
    assert_eq!(
        choose(&moving, &candidates, NOW + 12 * 3_600_000),
        Outcome::Waiting(
            "no one in accounts fits: of 5, 1 without the ticket's language, 1 not on its channel, \
             1 not online, 1 off shift, 1 the one it is taken from"
                .into()
        )
    );
    assert_eq!(
        choose(
            &Need {
                department: "legal",
                ..need()
            },
            &candidates,
            NOW
        ),
        Outcome::Waiting("no agent works in legal".into())
    );
}

#[test]
fn ties_break_on_skill_level_then_id_so_every_replica_agrees() {
    let (a, b, c) = (
        agent("a", Tier::L1, 8, &[("登录认证", 2)]),
        agent("b", Tier::L1, 8, &[("登录认证", 5)]),
        agent("c", Tier::L1, 8, &[("登录认证", 5)]),
    );
    let idle = load(1, 1.0);
    let candidates = [
        Candidate {
            agent: &c,
            load: &idle,
        },
        Candidate {
            agent: &a,
            load: &idle,
        },
        Candidate {
            agent: &b,
            load: &idle,
        },
    ];
    assert_eq!(chosen(choose(&need(), &candidates, NOW)).agent, "b");
}

#[test]
fn work_goes_in_progress_first_then_soonest_due_still_in_time_then_longest_late() {
    let minute = 60_000;
    let held = |started: bool, start_by_ms: Option<i64>| Held {
        weight: 1.0,
        since_ms: NOW - 30 * minute,
        started,
        start_by_ms,
    };
    let load = Load {
        tickets: BTreeMap::from([
            ("late-a-little".to_owned(), held(false, Some(NOW - minute))),
            ("due-later".to_owned(), held(false, Some(NOW + 40 * minute))),
            (
                "in-progress".to_owned(),
                held(true, Some(NOW - 20 * minute)),
            ),
            ("due-soon".to_owned(), held(false, Some(NOW + 5 * minute))),
            ("late-long".to_owned(), held(false, Some(NOW - 50 * minute))),
            // A record from before targets were kept: due when it was given, so late by now.
            ("no-target".to_owned(), held(false, None)),
        ]),
    };
    assert_eq!(
        work_order(&load, NOW),
        [
            "in-progress",
            "due-soon",
            "due-later",
            "late-long",
            "no-target",
            "late-a-little"
        ]
    );
    // The same tickets an hour earlier: every one still in time, soonest due first.
    assert_eq!(
        work_order(&load, NOW - 60 * minute),
        [
            "in-progress",
            "late-long",
            "no-target",
            "late-a-little",
            "due-soon",
            "due-later"
        ]
    );
}
