//! What agents can use besides the built-in memory, task and cron tools: skills now; MCP
//! servers, web tools and approvals belong here too as they arrive, each in a module of its own.

pub mod skills;
