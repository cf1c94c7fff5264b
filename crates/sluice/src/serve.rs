//! `sluice serve`: a `Node` built from the config, then run until SIGTERM/SIGINT.

mod dev;
mod node;
mod overrides;
mod setup;

pub use node::Node;
pub use setup::open_store;

pub async fn run(args: crate::ConfigArgs, roles: &[crate::Role]) -> anyhow::Result<()> {
    Node::build(args, roles).await?.run().await
}
