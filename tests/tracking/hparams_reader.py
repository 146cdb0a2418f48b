"""TensorBoard's own HParams backend over a log folder: the session groups its dashboard lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def session_groups(logdir: Path) -> dict[str, tuple[dict[str, Any], dict[str, float]]]:
    """Each session group by name: (its hyperparameters, its metrics), as the dashboard has them."""
    from google.protobuf import json_format
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    events = plugin_event_multiplexer.EventMultiplexer()
    events.AddRunsFromDirectory(str(logdir))
    events.Reload()
    provider = data_provider.MultiplexerDataProvider(events, str(logdir))
    backend = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=events)
    )
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=1000,
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS],
    )  # fmt: skip
    handler = list_session_groups.Handler(context.RequestContext(), backend, "", request)
    groups = {}
    for group in handler.run().session_groups:
        hparams = {k: json_format.MessageToDict(v) for k, v in group.hparams.items()}
        metrics = {m.name.tag: m.value for m in group.metric_values}
        groups[group.name] = (hparams, metrics)
    return groups


def experiment_hparams(logdir: Path) -> list[str]:
    """The names of the hyperparameters of the experiment summary in `logdir`'s event files."""
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins.hparams import metadata

    events = plugin_event_multiplexer.EventMultiplexer()
    events.AddRunsFromDirectory(str(logdir))
    events.Reload()
    content = events.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    found = [metadata.parse_experiment_plugin_data(tags[metadata.EXPERIMENT_TAG])
             for tags in content.values() if metadata.EXPERIMENT_TAG in tags]  # fmt: skip
    assert len(found) == 1, f"{len(found)} experiment summaries under {logdir}"
    return [info.name for info in found[0].hparam_infos]
