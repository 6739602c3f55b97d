//! The durable event bus of a scaled-out deployment (SPEC section 2): NATS JetStream.
