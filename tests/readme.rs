//! The README's integration example is `examples/minimal.rs`, which CI compiles: this keeps
//! the README's copy identical to it, so what a new user pastes is what compiles.

#[test]
fn the_readme_shows_the_minimal_example_as_it_is() {
    let readme = include_str!("../README.md");
    let minimal = include_str!("../examples/minimal.rs");
    assert!(
        readme.contains(&format!("```rust,ignore\n{minimal}```")),
        "README.md's copy of examples/minimal.rs is out of date: paste the file again"
    );
}
