"""The SODA service without HTTP: the parameter rules, access decisions and the order
of the work (limits before pixels), with a stand-in for the dataset lookup."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from auth.principals import ANONYMOUS, Principal
from tests.soda.frames import frame
from vo_service.errors import AuthorizationFault, NotFoundFault, UsageFault
from vo_service.params import Params
from vo_service.services import soda as soda_module
from vo_service.services.datasets import Dataset
from vo_service.services.regions import Circle
from vo_service.services.soda import MultiValuedParamNotSupported, SodaService
from vo_service.settings import DownloadSettings

pytestmark = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")
OWNER = Principal(user_id=7, login="owner@x", display_name="Owner")


def _dataset(did: str, path: str, kind: str = "image") -> Dataset:
    return Dataset(did=did, path=path, filename=Path(path).name, night=date(2020, 1, 1),
                   instrument_dir="nickel", instrument="Nickel", frame_type="science",
                   file_size=1, file_mtime=None, checksum=None, release_date=None,
                   dataproduct_type=kind, access_format=None, s_ra=None, s_dec=None,
                   s_fov=None, em_min=4e-7, em_max=5e-7)


class Lookup:
    """Stands in for DatasetLookup: ``public`` for everyone, ``owned`` for OWNER."""

    def __init__(self, root: Path, public: list[Dataset], owned: list[Dataset]) -> None:
        self.root, self.public, self.owned = root, public, owned

    def visible(self, principal: Principal, dids: list[str]) -> dict[str, Dataset]:
        pool = self.public + (self.owned if principal.is_authenticated else [])
        return {d.did: d for d in pool if d.did in dids}

    def file_of(self, dataset: Dataset) -> Path | None:
        path = self.root / dataset.path
        return path if path.is_file() else None


@pytest.fixture
def service(tmp_path: Path) -> SodaService:
    frame(tmp_path / "d1.fits", "nickel", ra=114.5, dec=38.9, shape=(64, 64))
    lookup = Lookup(tmp_path, [_dataset("ivo://x/lick?d1", "d1.fits"),
                               _dataset("ivo://x/lick?b1", "b1.fits", "spectrum"),
                               _dataset("ivo://x/lick?gone", "gone.fits")],
                    [_dataset("ivo://x/lick?mine", "d1.fits")])
    settings = DownloadSettings(cutout_max_pixels=1000, cutout_max_count=4)
    return SodaService(lookup, settings, "http://h", "Test")  # type: ignore[arg-type]


def _params(*pairs: tuple[str, str]) -> Params:
    return Params(pairs)


def test_combinations_and_their_limit(service: SodaService) -> None:
    request = service.parse(_params(("id", "a"), ("ID", "b"), ("ID", "a"),
                                    ("CIRCLE", "1 2 3"), ("POS", "CIRCLE 1 2 3")))
    assert request.ids == ("a", "b") and request.regions == (Circle(1, 2, 3),)
    assert request.bands == (None,) and request.count == 2
    whole = service.parse(_params(("ID", "a"), ("CIRCLE", ""), ("BAND", " ")))
    assert whole.regions == (None,) and whole.bands == (None,)
    with pytest.raises(UsageFault, match="make 6 cutouts; at most 4"):
        service.parse(_params(("ID", "a"), ("ID", "b"), ("ID", "c"), ("CIRCLE", "1 2 3"),
                              ("CIRCLE", "1 2 4")))
    with pytest.raises(MultiValuedParamNotSupported):
        service.parse(_params(("ID", "a"), ("RESPONSEFORMAT", "fits"),
                              ("RESPONSEFORMAT", "application/fits")))
    assert service.parse(_params(("ID", "a"), ("RESPONSEFORMAT", "image/fits"))).count == 1


def test_access_decisions(service: SodaService) -> None:
    request = service.parse(_params(("ID", "ivo://x/lick?mine")))
    with pytest.raises(AuthorizationFault) as anonymous:
        service.lookup(ANONYMOUS, request)
    assert anonymous.value.status == 401
    assert [d.did for d in service.lookup(OWNER, request)] == ["ivo://x/lick?mine"]
    with pytest.raises(NotFoundFault):
        service.lookup(OWNER, service.parse(_params(("ID", "ivo://x/lick?nothing"))))
    with pytest.raises(UsageFault, match="is a spectrum, not an image"):
        service.lookup(ANONYMOUS, service.parse(_params(("ID", "ivo://x/lick?b1"))))


def test_limits_are_checked_before_any_pixel(service: SodaService, monkeypatch) -> None:
    def no_cutting(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were cut before the limit was checked")

    monkeypatch.setattr(soda_module, "cut", no_cutting)
    request = service.parse(_params(("ID", "ivo://x/lick?d1")))  # 64 x 64 > 1000
    datasets = service.lookup(ANONYMOUS, request)
    with pytest.raises(UsageFault, match="4096 pixels, more than the 1000 allowed"):
        service.cutouts(datasets, request)


def test_no_overlap_and_missing_files(service: SodaService) -> None:
    far = service.parse(_params(("ID", "ivo://x/lick?d1"), ("CIRCLE", "10 -40 1")))
    result = service.cutouts(service.lookup(ANONYMOUS, far), far)
    assert result.content is None and result.count == 0
    band = service.parse(_params(("ID", "ivo://x/lick?d1"), ("BAND", "1e-6 2e-6")))
    assert service.cutouts(service.lookup(ANONYMOUS, band), band).content is None
    gone = service.parse(_params(("ID", "ivo://x/lick?gone")))
    with pytest.raises(NotFoundFault, match="not on the archive disk"):
        service.cutouts(service.lookup(ANONYMOUS, gone), gone)
