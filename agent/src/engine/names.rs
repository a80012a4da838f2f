//! Names for containers started without `--name`, in docker's `adjective_surname` form, picked
//! deterministically from the container's ID (so a name is reproducible from its ID).

const ADJECTIVES: [&str; 24] = [
    "admiring", "bold", "brave", "busy", "calm", "clever", "eager", "elastic", "focused",
    "gallant", "happy", "jolly", "keen", "lucid", "modest", "nifty", "quirky", "relaxed", "serene",
    "sharp", "stoic", "tender", "vibrant", "zealous",
];

/// Navigators and ships' engineers, for a fleet.
const SURNAMES: [&str; 24] = [
    "bering",
    "bougainville",
    "cabot",
    "cartier",
    "cook",
    "dampier",
    "drake",
    "elcano",
    "flinders",
    "frobisher",
    "gama",
    "harrison",
    "hudson",
    "humboldt",
    "magellan",
    "mercator",
    "nansen",
    "polo",
    "raleigh",
    "shackleton",
    "tasman",
    "vancouver",
    "vespucci",
    "zheng",
];

/// A name for the container `id` (hex digits), e.g. `brave_nansen_3f2a`: the ID's last four
/// digits keep two containers from sharing one by chance.
pub fn generate(id: &str) -> String {
    let number = |range: std::ops::Range<usize>| {
        id.get(range)
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .unwrap_or(0)
    };
    let suffix = id.get(id.len().saturating_sub(4)..).unwrap_or("");
    format!(
        "{}_{}_{suffix}",
        ADJECTIVES[number(0..2) % ADJECTIVES.len()],
        SURNAMES[number(2..4) % SURNAMES.len()]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_container_names_and_follow_the_id() {
        let id = "0a1b000000000000000000000000000000000000000000000000000000003f2a";
        let name = generate(id);
        assert_eq!(name, generate(id));
        assert!(name.ends_with("_3f2a"));
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
        assert_ne!(name, generate(&id.replace("0a1b", "0b1c")));
    }
}
