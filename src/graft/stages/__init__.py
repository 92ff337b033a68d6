"""One thin module per DVC stage, named as the stage in dvc.yaml: each ``run(params)`` loads its
inputs, calls keyword-only cores from the area packages, and writes the stage's records.
``graft <stage>`` calls it; these modules are the CLI's list of stages (a test checks them
against dvc.yaml)."""
