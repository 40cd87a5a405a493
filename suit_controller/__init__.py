"""suit-controller: the runtime — protocol, links, engine, CLI."""
