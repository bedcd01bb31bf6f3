//! The two roles a key can hold. `admin` may do everything `predict` may.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `/admin/*`, `/dashboard`, and prediction.
    Admin,
    /// Prediction endpoints only.
    Predict,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Predict];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Predict => "predict",
        }
    }

    /// The article before the role's name in a sentence ("an admin key").
    pub fn article(self) -> &'static str {
        match self {
            Self::Admin => "an",
            Self::Predict => "a",
        }
    }

    /// Whether a key with this role may use an endpoint that needs `needed`.
    pub fn grants(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("role must be admin or predict, not {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_grants_everything_predict_only_predict() {
        assert!(Role::Admin.grants(Role::Admin));
        assert!(Role::Admin.grants(Role::Predict));
        assert!(Role::Predict.grants(Role::Predict));
        assert!(!Role::Predict.grants(Role::Admin));
        assert_eq!("predict".parse::<Role>(), Ok(Role::Predict));
        assert!("root".parse::<Role>().is_err());
    }
}
