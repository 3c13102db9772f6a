"""Data: choose a sample or upload your own; check the table, images, column roles and health."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import data_view as dv
from multimodal.app import navigation, state
from multimodal.app.row_ids import with_row_ids
from multimodal.core import limits
from multimodal.data.health import health_report
from multimodal.data.roles import IMAGE_EXTENSIONS
from multimodal.data.samples import SAMPLES
from multimodal.data.sources import list_samples

MODES = ("Sample dataset", "Upload your own")


def _title(name: str) -> str:
    return SAMPLES[name].title if name in SAMPLES else name


def _pick_sample() -> None:
    name = st.session_state.data_sample
    dv.load_into_session(name, shown_source=name)


st.title(":material/table: Data")
st.caption("A dataset is one CSV (one row per example) plus the images its image columns point to.")
ds = state.dataset()
source = state.dataset_source()
samples = list_samples()

mode = st.radio("Source", MODES, horizontal=True, key="data_mode",
                index=0 if source in samples or source is None else 1, label_visibility="collapsed")
if mode == MODES[0]:
    pick = st.selectbox("Sample dataset", samples, format_func=_title, key="data_sample",
                        index=samples.index(source) if source in samples else 0, on_change=_pick_sample)
    if pick in SAMPLES:
        st.caption(SAMPLES[pick].description)
    if pick != source and st.button(f"Use {_title(pick)}", icon=":material/download:"):
        _pick_sample()
        st.rerun()
else:
    st.markdown("Upload **one .zip** of a folder holding one CSV and its images, **or** the CSV plus its "
                "image files (add them in one or several steps; the upload is checked each time). Image paths "
                f"in the CSV are relative to the CSV. Limits: {dv.uploader_limit_mb():,} MB per file, "
                f"{limits.MAX_UPLOAD_MB.get():,} MB and {limits.MAX_ZIP_MEMBERS.get():,} files in all, "
                f"{limits.MAX_ROWS.get():,} rows; bigger datasets belong on the command line.")
    generation = st.session_state.setdefault("data_upload_gen", 0)
    files = st.file_uploader("Dataset files", accept_multiple_files=True, key=f"data_upload_{generation}",
                             type=["zip", "csv", *(e.lstrip(".") for e in IMAGE_EXTENSIONS)],
                             max_upload_size=dv.uploader_limit_mb())
    signature = tuple((f.file_id, f.name, f.size) for f in files or [])
    if files and signature != st.session_state.get("data_upload_sig"):
        st.session_state.data_upload_sig = signature
        with st.spinner("Checking and loading the upload..."):
            if dv.load_upload(files):
                st.session_state.data_upload_gen = generation + 1  # a fresh, empty uploader
                st.rerun()

dv.show_error()
ds = state.dataset()
if ds is None:
    st.warning("No dataset is loaded; pick a sample or upload one.")
    st.stop()

spec = ds.features
st.subheader(f"{_title(ds.name)}")
st.markdown(f"**{len(ds.frame):,} rows** · target **{ds.target}** ({ds.task}"
            + (f", classes: {', '.join(ds.classes[:8])}" if ds.classes else "") + ") · "
            f"{len(spec.image_cols)} image column(s) · {len(spec.numeric_cols)} numeric · "
            f"{len(spec.categorical_cols)} categorical")
dv.ordered_images_choice(ds)

table, images, roles, report = st.tabs([":material/table_rows: Table", ":material/image: Images",
                                        ":material/tune: Roles", ":material/health_and_safety: Health"])
with table:
    st.dataframe(with_row_ids(ds, ds.frame.head(500)), hide_index=True, width="stretch", height=360)
    st.caption(f"First {min(500, len(ds.frame))} of {len(ds.frame):,} rows.")
with images:
    dv.image_grid(ds, 12)
with roles:
    chosen = dv.role_form(ds)
    if chosen is not None:
        dv.load_into_session(str(ds.csv_path), shown_source=source, name=ds.name, **chosen)
        st.rerun()
with report:
    dv.health(ds, health_report(ds))

navigation.link("model", "Next: choose a fusion model", icon=":material/arrow_forward:")
