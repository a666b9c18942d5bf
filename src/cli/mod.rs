//! The command line (being implemented).

pub fn main() -> i32 {
    0
}
