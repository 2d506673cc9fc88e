//! The worker that runs received messages through the incoming pipeline.
