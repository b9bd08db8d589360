//! The one integration test binary: a module per topic. Run it with
//! `./test.sh`, which provisions the services the tests need.

mod support;

mod services;
