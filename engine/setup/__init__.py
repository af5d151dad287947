"""The engine's environment: files bundled with it (:mod:`.bundled`: models, requirements, version),
the pip command that installs what is missing (:mod:`.install`) and the environment check
(:mod:`.environment`)."""
