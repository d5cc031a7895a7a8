//! Enumerations with the exact spelling the schemas require (PROTOCOL.md §4.3).
//!
//! Input is case-folded before mapping and a value the enum does not know maps to
//! the documented fallback instead of failing the whole document, so one odd
//! upstream value never discards a section.

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident, fallback = $fb:ident, { $($var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($var),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
            /// Case-insensitive parse; `None` for an unknown value.
            pub fn parse(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($s) { return Some($name::$var); })+
                None
            }
            /// Case-insensitive parse with the documented fallback.
            pub fn parse_or_fallback(s: &str) -> Self {
                Self::parse(s).unwrap_or($name::$fb)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse_or_fallback(&s))
            }
        }
    };
}

wire_enum!(
    /// `status` of system, power, audio.
    Status, fallback = Degraded, { Ok => "ok", Degraded => "degraded", Offline => "offline" }
);
wire_enum!(
    /// `rf.status`.
    RfStatus, fallback = Unknown, { Ok => "ok", Degraded => "degraded", Offline => "offline", Unknown => "unknown" }
);
wire_enum!(
    /// `remote_id.state` (anything unknown → degraded, aggregator §4.2).
    RemoteIdHealth, fallback = Degraded, { Ok => "ok", Degraded => "degraded", Offline => "offline", Replay => "replay" }
);
wire_enum!(
    /// `remote_id.mode`.
    RemoteIdMode, fallback = Live, { Live => "live", Replay => "replay", Off => "off" }
);
wire_enum!(
    /// GPS `fix`.
    Fix, fallback = NoFix, { NoFix => "NO_FIX", Fix2d => "FIX_2D", Fix3d => "FIX_3D" }
);
wire_enum!(
    /// UPS `state`.
    UpsState, fallback = Unknown, {
        Idle => "IDLE", Charging => "CHARGING", FastCharging => "FAST_CHARGING",
        Discharging => "DISCHARGING", Unknown => "UNKNOWN"
    }
);
wire_enum!(
    /// `video.status`.
    VideoStatus, fallback = Unknown, { Ok => "ok", Offline => "offline", Unknown => "unknown" }
);
wire_enum!(
    /// Contact severity, highest first in [`Severity::rank`].
    Severity, fallback = Unknown, {
        Critical => "critical", High => "high", Medium => "medium", Low => "low", Unknown => "unknown"
    }
);
wire_enum!(
    /// AntSDR gain mode.
    GainMode, fallback = Manual, { Manual => "manual", Auto => "auto" }
);
wire_enum!(
    /// LOG_EVENT `level`.
    LogLevel, fallback = Info, { Info => "info", Warn => "warn", Error => "error" }
);

impl Severity {
    /// Sort rank: larger is more severe.
    pub const fn rank(self) -> u8 {
        match self {
            Severity::Critical => 4,
            Severity::High => 3,
            Severity::Medium => 2,
            Severity::Low => 1,
            Severity::Unknown => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_folding_and_fallback() -> Result<(), serde_json::Error> {
        let s: Status = serde_json::from_str("\"DEGRADED\"")?;
        assert_eq!(s, Status::Degraded);
        let s: Status = serde_json::from_str("\"weird\"")?;
        assert_eq!(s, Status::Degraded);
        let f: Fix = serde_json::from_str("\"fix_3d\"")?;
        assert_eq!(serde_json::to_string(&f)?, "\"FIX_3D\"");
        let u: UpsState = serde_json::from_str("\"sideways\"")?;
        assert_eq!(u, UpsState::Unknown);
        assert!(Severity::High.rank() > Severity::Medium.rank());
        Ok(())
    }
}
