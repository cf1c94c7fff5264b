//! Fault injection for a capture sandbox: SMTP answers a developer configures per account
//! (`capture_chaos`), each at one stage of the dialogue with a probability, so their
//! application's retry code meets a 451 at RCPT one time in ten without a flaky upstream.
//! Only sandboxed senders (an account in sandbox mode, a sandboxed SMTP login) get them.
//! Pure: the caller draws the random sample.

use serde::{Deserialize, Serialize};

/// Where in the SMTP dialogue a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosStage {
    /// After the credentials were accepted: the AUTH answer.
    Auth,
    Mail,
    Rcpt,
    /// The DATA command (before 354; BDAT is not affected).
    Data,
}

/// One injected answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosRule {
    /// 400 to 599, but not 421 (which closes the session).
    pub code: u16,
    /// 0 to 1: how often.
    pub probability: f64,
    /// The text after the codes; a default names the sandbox.
    #[serde(default)]
    pub message: Option<String>,
}

/// An account's rules, at most one per stage (`capture_chaos`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ChaosRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<ChaosRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcpt: Option<ChaosRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ChaosRule>,
}

// Probabilities are checked finite (`check`) before rules are saved or used, so
// comparing them is an equivalence.
impl Eq for ChaosRule {}
impl Eq for ChaosRules {}

/// An answer to give instead of the real one: code, enhanced code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaosAnswer {
    pub code: u16,
    pub enhanced: String,
    pub text: String,
}

impl ChaosRules {
    /// Why these rules cannot be saved, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        for (stage, rule) in self.rules() {
            let Some(rule) = rule else { continue };
            if !(400..=599).contains(&rule.code) || rule.code == 421 {
                return Err(format!("{stage}.code is 400 to 599, but not 421"));
            }
            if !(0.0..=1.0).contains(&rule.probability) || rule.probability.is_nan() {
                return Err(format!("{stage}.probability is 0 to 1"));
            }
            if let Some(message) = &rule.message
                && (message.len() > 200 || message.chars().any(|c| c.is_control()))
            {
                return Err(format!(
                    "{stage}.message is at most 200 characters, on one line"
                ));
            }
        }
        Ok(())
    }

    fn rules(&self) -> [(&'static str, &Option<ChaosRule>); 4] {
        [
            ("auth", &self.auth),
            ("mail", &self.mail),
            ("rcpt", &self.rcpt),
            ("data", &self.data),
        ]
    }

    /// The injected answer at `stage` for a uniform `sample` in [0, 1), if the rule fires.
    pub fn answer(&self, stage: ChaosStage, sample: f64) -> Option<ChaosAnswer> {
        let rule = match stage {
            ChaosStage::Auth => &self.auth,
            ChaosStage::Mail => &self.mail,
            ChaosStage::Rcpt => &self.rcpt,
            ChaosStage::Data => &self.data,
        }
        .as_ref()?;
        if sample >= rule.probability {
            return None;
        }
        let class = rule.code / 100;
        Some(ChaosAnswer {
            code: rule.code,
            enhanced: format!("{class}.3.0"),
            text: rule
                .message
                .clone()
                .unwrap_or_else(|| "Injected failure (capture sandbox chaos)".into()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(_, rule)| rule.is_none())
    }
}

/// A small deterministic generator (SplitMix64) for the session's samples: seeded by the
/// server from the OS, by tests with a constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaosDice(u64);

impl ChaosDice {
    pub fn new(seed: u64) -> ChaosDice {
        ChaosDice(seed)
    }

    /// A uniform sample in [0, 1).
    pub fn roll(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt_451(probability: f64) -> ChaosRules {
        ChaosRules {
            rcpt: Some(ChaosRule {
                code: 451,
                probability,
                message: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_rule_fires_below_its_probability_at_its_stage_only() {
        let rules = rcpt_451(0.1);
        let answer = rules.answer(ChaosStage::Rcpt, 0.05).unwrap();
        assert_eq!((answer.code, answer.enhanced.as_str()), (451, "4.3.0"));
        assert!(answer.text.contains("chaos"));
        assert_eq!(rules.answer(ChaosStage::Rcpt, 0.1), None);
        assert_eq!(rules.answer(ChaosStage::Mail, 0.0), None);
        assert_eq!(rcpt_451(0.0).answer(ChaosStage::Rcpt, 0.0), None);
        assert!(rcpt_451(1.0).answer(ChaosStage::Rcpt, 0.999).is_some());
    }

    #[test]
    fn over_many_rolls_the_rate_is_the_probability() {
        let rules = rcpt_451(0.1);
        let mut dice = ChaosDice::new(7);
        let fired = (0..100_000)
            .filter(|_| rules.answer(ChaosStage::Rcpt, dice.roll()).is_some())
            .count();
        assert!((9_000..11_000).contains(&fired), "{fired}");
    }

    #[test]
    fn rules_that_cannot_be_saved_say_why() {
        assert!(rcpt_451(0.5).check().is_ok());
        assert!(
            rcpt_451(1.5)
                .check()
                .unwrap_err()
                .contains("rcpt.probability")
        );
        let mut closes = rcpt_451(0.5);
        closes.rcpt.as_mut().unwrap().code = 421;
        assert!(closes.check().unwrap_err().contains("rcpt.code"));
        let mut ok = rcpt_451(0.5);
        ok.rcpt.as_mut().unwrap().code = 250;
        assert!(ok.check().is_err());
        let mut multi = rcpt_451(0.5);
        multi.rcpt.as_mut().unwrap().message = Some("a\r\nb".into());
        assert!(multi.check().is_err());
        let parsed: Result<ChaosRules, _> = serde_json::from_str(r#"{"quit": {"code": 451}}"#);
        assert!(parsed.is_err(), "unknown stages are refused");
    }
}
