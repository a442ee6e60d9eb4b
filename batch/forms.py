from __future__ import annotations

from django import forms


class UploadForm(forms.Form):
    file = forms.FileField(
        label="File", widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx", "data-dropzone-input": ""})
    )
