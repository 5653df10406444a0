"""The monitoring commands of `sentipipe`: monitor, feedback, export-feedback.

Light at import, as the command line is: each command imports what it needs when it runs.
"""

from __future__ import annotations

from pathlib import Path

from sentipipe.cli_models import checked_model, served_identity, served_model


def _params(args):
    """monitoring.* from the params file, with --log in place of monitoring.log when given."""
    from sentipipe import config  # noqa: PLC0415

    params = config.load(args.params, config.MonitoringConfig).monitoring
    return params.model_copy(update={"log": args.log}) if args.log else params


def monitor(args) -> int:
    """Drift and live figures of a served version's newest windows; exit 3 when a threshold is crossed."""
    from sentipipe.monitoring import monitor as monitoring  # noqa: PLC0415
    from sentipipe.monitoring.report import summary_lines  # noqa: PLC0415

    params = _params(args)
    tracking_uri, model_uri = checked_model(args, "classifier")
    served = monitoring.Served(**served_identity(tracking_uri, model_uri), model=served_model(args, "classifier"))
    report = monitoring.monitor(params, served, Path(args.reference), Path(args.output), tracking_uri, args.retest)
    print("\n".join(summary_lines(report)))
    print(f"report: {Path(args.output) / 'report.html'} (and report.json); MLflow run {report['monitor_run_id']}")
    return monitoring.ALARM if report["alarm"] else 0


def feedback(args) -> None:
    from sentipipe.monitoring import feedback as labels  # noqa: PLC0415

    params = _params(args)
    done = labels.record(params, Path(args.file))
    print(f"recorded {done['recorded']} labels in {done['file']}")


def export_feedback(args) -> None:
    from sentipipe.monitoring import feedback as labels  # noqa: PLC0415

    params = _params(args)
    held_out = [Path(args.prepared) / f"{name}.parquet" for name in ("val", "test")]
    done = labels.export(params, Path(args.output), held_out)
    print(
        f"wrote {done['written']} training rows to {done['output']} ({done['labelled']} labelled; left out: "
        f"{done['in_validation_or_test']} in the validation or test split, {done['conflicting_labels']} with "
        f"conflicting labels, {done['duplicates']} duplicates). Add it to the next run with "
        f"data.train_extra: [{done['output']}]"
    )
