//! What an account may do where: the roles it holds in each community (小区), and optionally
//! across every community of the server (`"*"`, a 街道's staff).
//!
//! Written `{"tpy": ["admin"], "hx": ["counting_officer"], "*": ["dispatcher"]}` in the JSON
//! API, the database and the audit log. A person who is admin of one community and counting
//! officer of another holds both in one account; in community `c` they have the roles of
//! `grants[c]` together with those of `grants["*"]`.

use std::collections::{BTreeMap, BTreeSet};

use doorstep_core::model::Role;
use serde::Serialize;

use super::Communities;

/// The key of the grant that applies in every community.
pub const EVERYWHERE: &str = "*";

/// Roles per community; never empty, and no community has an empty role set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grants(BTreeMap<String, BTreeSet<Role>>);

impl Grants {
    /// The same `roles` in each of `communities` (what an account held before roles were per
    /// community, and the `roles` + `communities` shorthand of the API). `None` when `roles`
    /// or `communities` is empty.
    pub fn uniform(roles: &[Role], communities: &Communities) -> Option<Grants> {
        let roles: BTreeSet<Role> = roles.iter().copied().collect();
        Grants::from_map(
            communities
                .to_list()
                .into_iter()
                .map(|c| (c, roles.clone()))
                .collect(),
        )
    }

    /// `roles` in community `community` (or `"*"`) only.
    pub fn one(community: &str, roles: &[Role]) -> Option<Grants> {
        Grants::uniform(roles, &Communities::from_list(&[community.to_string()])?)
    }

    /// From the written form; `None` when it is empty, names something that is neither a
    /// community id nor `"*"`, or gives a community no role.
    pub fn from_map(map: BTreeMap<String, BTreeSet<Role>>) -> Option<Grants> {
        let valid = !map.is_empty()
            && map.iter().all(|(scope, roles)| {
                !roles.is_empty()
                    && (scope == EVERYWHERE || doorstep_core::doc::is_id_segment(scope))
            });
        valid.then_some(Grants(map))
    }

    /// These grants and `role` in `scope` (a community id or `"*"`); `None` when `scope` is
    /// neither.
    pub fn with(&self, scope: &str, role: Role) -> Option<Grants> {
        let mut map = self.0.clone();
        map.entry(scope.to_string()).or_default().insert(role);
        Grants::from_map(map)
    }

    /// These grants without `role` in `scope`; `None` when nothing would be left.
    pub fn without(&self, scope: &str, role: Role) -> Option<Grants> {
        let mut map = self.0.clone();
        if let Some(roles) = map.get_mut(scope) {
            roles.remove(&role);
            if roles.is_empty() {
                map.remove(scope);
            }
        }
        Grants::from_map(map)
    }

    /// Each scope (a community id or `"*"`) with the roles held there.
    pub fn scopes(&self) -> impl Iterator<Item = (&str, &BTreeSet<Role>)> {
        self.0.iter().map(|(scope, roles)| (scope.as_str(), roles))
    }

    /// The roles held in `community`: its own and the server-wide ones.
    pub fn roles_in(&self, community: &str) -> Vec<Role> {
        let mut roles: BTreeSet<Role> = BTreeSet::new();
        for scope in [community, EVERYWHERE] {
            if let Some(held) = self.0.get(scope) {
                roles.extend(held);
            }
        }
        roles.into_iter().collect()
    }

    /// What a phone holding documents of `communities` is told it may do: the roles held in
    /// any of them (every role held, when it holds none yet). Its own checks then match the
    /// server's in each of those communities unless the account's roles differ between them,
    /// where the server's check per community is the one that counts.
    pub fn phone_roles<'a>(&self, communities: impl IntoIterator<Item = &'a str>) -> Vec<Role> {
        let mut roles: BTreeSet<Role> = BTreeSet::new();
        let mut any = false;
        for community in communities {
            any = true;
            roles.extend(self.roles_in(community));
        }
        if any {
            roles.into_iter().collect()
        } else {
            self.roles()
        }
    }

    /// Whether any of `roles` is held in `community`.
    pub fn has_any_in(&self, roles: &[Role], community: &str) -> bool {
        [community, EVERYWHERE].iter().any(|scope| {
            self.0
                .get(*scope)
                .is_some_and(|held| roles.iter().any(|r| held.contains(r)))
        })
    }

    /// Whether `role` is held in some community.
    pub fn anywhere(&self, role: Role) -> bool {
        self.0.values().any(|held| held.contains(&role))
    }

    /// Every role held somewhere, in order.
    pub fn roles(&self) -> Vec<Role> {
        let all: BTreeSet<Role> = self.0.values().flatten().copied().collect();
        all.into_iter().collect()
    }

    /// The communities where any role is held.
    pub fn communities(&self) -> Communities {
        self.communities_with(&self.roles())
    }

    /// The communities where one of `roles` is held.
    pub fn communities_with(&self, roles: &[Role]) -> Communities {
        let mut set = BTreeSet::new();
        for (scope, held) in &self.0 {
            if roles.iter().any(|r| held.contains(r)) {
                if scope == EVERYWHERE {
                    return Communities::All;
                }
                set.insert(scope.clone());
            }
        }
        Communities::Only(set)
    }

    /// Whether some role is held in every community (a 街道's staff).
    pub fn street_wide(&self) -> bool {
        self.0.contains_key(EVERYWHERE)
    }

    /// Whether these grants let their holder administer `scope` (a community id, or `"*"` for
    /// the whole server): admin there, or admin everywhere.
    pub fn administers(&self, scope: &str) -> bool {
        self.0
            .get(EVERYWHERE)
            .is_some_and(|held| held.contains(&Role::Admin))
            || (scope != EVERYWHERE
                && self
                    .0
                    .get(scope)
                    .is_some_and(|held| held.contains(&Role::Admin)))
    }

    /// Whether these grants administer every scope of `other`: what an admin may give, and
    /// whose account they may see and manage.
    pub fn administers_all(&self, other: &Grants) -> bool {
        other.0.keys().all(|scope| self.administers(scope))
    }
}

impl<'de> serde::Deserialize<'de> for Grants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, BTreeSet<Role>>::deserialize(d)?;
        Grants::from_map(map).ok_or_else(|| {
            serde::de::Error::custom(
                "grants map community ids (or \"*\" for every community) to non-empty role lists",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(json: &str) -> Grants {
        serde_json::from_str(json).expect("valid grants")
    }

    #[test]
    fn roles_apply_in_their_community_and_everywhere_roles_in_all() {
        let g = grants(r#"{"tpy": ["admin"], "hx": ["counting_officer"], "*": ["dispatcher"]}"#);
        assert_eq!(g.roles_in("tpy"), vec![Role::Admin, Role::Dispatcher]);
        assert_eq!(
            g.roles_in("hx"),
            vec![Role::CountingOfficer, Role::Dispatcher]
        );
        assert_eq!(g.roles_in("other"), vec![Role::Dispatcher]);
        assert!(g.has_any_in(&[Role::Admin], "tpy"));
        assert!(!g.has_any_in(&[Role::Admin], "hx"));
        assert_eq!(
            g.communities_with(&[Role::Admin, Role::CountingOfficer]),
            Communities::Only(["hx".to_string(), "tpy".to_string()].into())
        );
        assert_eq!(g.communities(), Communities::All);
        assert!(g.street_wide());
    }

    #[test]
    fn an_admin_administers_only_their_communities_unless_street_wide() {
        let community = grants(r#"{"tpy": ["admin"], "hx": ["counting_officer"]}"#);
        assert!(community.administers("tpy"));
        assert!(!community.administers("hx"));
        assert!(!community.administers(EVERYWHERE));
        assert!(community.administers_all(&grants(r#"{"tpy": ["building_head"]}"#)));
        assert!(!community.administers_all(&grants(r#"{"tpy": ["admin"], "hx": ["admin"]}"#)));
        assert!(!community.administers_all(&grants(r#"{"*": ["dispatcher"]}"#)));
        let street = grants(r#"{"*": ["admin"]}"#);
        assert!(street.administers(EVERYWHERE) && street.administers("hx"));
        assert!(street.administers_all(&community));
    }

    #[test]
    fn a_role_is_added_and_taken_per_community() {
        let g = grants(r#"{"tpy": ["admin"]}"#);
        let more = g.with("hx", Role::CountingOfficer).expect("a community id");
        assert_eq!(
            more,
            grants(r#"{"tpy": ["admin"], "hx": ["counting_officer"]}"#)
        );
        assert_eq!(more.without("hx", Role::CountingOfficer), Some(g.clone()));
        assert_eq!(more.without("hx", Role::Admin), Some(more.clone()));
        assert!(g.without("tpy", Role::Admin).is_none(), "no role left");
        assert!(g.with("a b", Role::Admin).is_none());
    }

    #[test]
    fn malformed_grants_are_refused() {
        for bad in [
            "{}",
            r#"{"tpy": []}"#,
            r#"{"a b": ["admin"]}"#,
            r#"{"tpy": ["mayor"]}"#,
            r#"["admin"]"#,
        ] {
            assert!(serde_json::from_str::<Grants>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shorthand_gives_the_same_roles_in_each_community() {
        let g = Grants::uniform(&[Role::Admin], &Communities::All).expect("a role");
        assert_eq!(
            serde_json::to_string(&g).expect("json"),
            r#"{"*":["admin"]}"#
        );
        assert!(Grants::uniform(&[], &Communities::All).is_none());
        assert!(Grants::uniform(&[Role::Admin], &Communities::Only(BTreeSet::new())).is_none());
        assert_eq!(
            Grants::one("tpy", &[Role::BuildingHead]),
            Some(grants(r#"{"tpy": ["building_head"]}"#))
        );
    }
}
