"""The one place that makes ipywidgets controls, so a test or an embedding app can swap them."""

from __future__ import annotations

from typing import Any


class WidgetFactory:
    """Makes each control the widgets use; subclass it to record or restyle what gets built."""

    def _make(self, kind: str, **options: Any) -> Any:
        import ipywidgets

        return getattr(ipywidgets, kind)(**options)

    def dropdown(self, **options: Any) -> Any:
        """A choice from a list of (label, value) options."""
        return self._make("Dropdown", **options)

    def combobox(self, **options: Any) -> Any:
        """A text field that suggests options but accepts anything typed."""
        return self._make("Combobox", **options)

    def text(self, **options: Any) -> Any:
        """A one-line text field."""
        return self._make("Text", **options)

    def checkbox(self, **options: Any) -> Any:
        """A tick box."""
        return self._make("Checkbox", **options)

    def toggle_buttons(self, **options: Any) -> Any:
        """A row of buttons of which one is chosen."""
        return self._make("ToggleButtons", **options)

    def button(self, **options: Any) -> Any:
        """A push button."""
        return self._make("Button", **options)

    def html(self, value: str = "", **options: Any) -> Any:
        """Rendered HTML: labels, error lines, reports."""
        return self._make("HTML", value=value, **options)

    def float_progress(self, **options: Any) -> Any:
        """A progress bar from ``min`` to ``max``."""
        return self._make("FloatProgress", **options)

    def output(self, **options: Any) -> Any:
        """An area that shows rich display output (frames, reports)."""
        return self._make("Output", **options)

    def vbox(self, children: list[Any], **options: Any) -> Any:
        """Children stacked top to bottom."""
        return self._make("VBox", children=children, **options)

    def hbox(self, children: list[Any], **options: Any) -> Any:
        """Children side by side."""
        return self._make("HBox", children=children, **options)
