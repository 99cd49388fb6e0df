"""`register describe` (issue 12, item 4): the privacy notice and the article-30 record,
generated from the register, on SQLite and PostgreSQL.

Every section in Finnish, Swedish and English; every column of `customer` and
`source_record` in the live schema among the categories, with its documented meaning;
an undocumented column or table stops it with its name; the settings it names are
those configured; HTML escapes; never a customer's value (it reads no row).
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from pipeline.cli import main
from pipeline.register.description import (DEFAULT_CONFIG, PERSONAL_TABLES, _plain, documented,
                                            load_config)
from pipeline.register.retention import DEFAULT_EXTRACT_DAYS, DEFAULT_QUARANTINE_DAYS
from schemas.canonical import CHANNELS
from schemas.register import customer

# The sections each language must have (written here, not taken from the module): notice, then record.
SECTIONS = {
    "fi": ["Rekisterinpitäjä ja yhteystiedot", "Tietosuojavastaava", "Käsittelyn tarkoitukset ja oikeusperusteet",
           "Henkilötietoryhmät", "Tietolähteet", "Vastaanottajat ja luovutukset",
           "Siirrot EU:n tai ETA:n ulkopuolelle", "Säilytysajat", "Rekisteröidyn oikeudet", "Tietoturva",
           "Rekisterinpitäjä", "Käsittelyn tarkoitukset", "Rekisteröityjen ryhmät ja henkilötietoryhmät",
           "Vastaanottajat", "Siirrot EU:n tai ETA:n ulkopuolelle", "Säilytysajat", "Tekniset ja organisatoriset turvatoimet"],
    "sv": ["Personuppgiftsansvarig och kontaktuppgifter", "Dataskyddsombud", "Ändamål och rättslig grund",
           "Kategorier av personuppgifter", "Uppgiftskällor", "Mottagare och utlämnanden",
           "Överföringar utanför EU/EES", "Lagringstid", "Den registrerades rättigheter", "Säkerhet",
           "Personuppgiftsansvarig", "Ändamål med behandlingen", "Kategorier av registrerade och av personuppgifter",
           "Mottagare", "Överföringar utanför EU/EES", "Lagringstid", "Tekniska och organisatoriska säkerhetsåtgärder"],
    "en": ["Controller and contact", "Data protection officer", "Purposes and legal bases",
           "Categories of personal data", "Sources", "Recipients and disclosures", "Transfers outside the EU/EEA",
           "Retention", "Your rights", "Security", "Controller", "Purposes of the processing",
           "Categories of data subjects and of personal data", "Recipients",
           "Transfers outside the EU/EEA", "Retention", "Technical and organisational security measures"],
}
AUTHORITY = {"fi": "Tietosuojavaltuutetun toimisto", "sv": "Dataombudsmannens byrå",
             "en": "Office of the Data Protection Ombudsman"}
# The rights, by the article each names, and the words for "days" after a number.
RIGHTS_ARTICLES = ("15", "16", "17", "21")
DAYS = {"fi": "{n} päivän", "sv": "{n} dagar", "en": "{n} days"}
ROLES = ("register_loader", "register_steward", "register_analyst", "register_marketing")

# A synthetic customer whose values must never appear in a description.
SYNTHETIC = {"first_names": "Kuvaus-Testihenkilö", "last_name": "Rivitön-Esimerkki",
             "street_address": "Kuvitelmakuja 77 B 9", "phone": "+358400000077",
             "email": "describe.synthetic@example.invalid", "iban": "FI0000000000000077"}


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _describe(capsys, engine, *args) -> tuple[int, str, str]:
    status = main(["--database-url", _url(engine), "describe", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _headings(markdown: str) -> list[str]:
    return [line[3:] for line in markdown.splitlines() if line.startswith("## ")]


def _config(tmp_path, name: str = "Testi Sähkö Oy (synthetic)", outside_eea: str = "[]"):
    path = tmp_path / "description.toml"
    path.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8")
                    .replace('name = "Esimerkki Energia Oy"', f'name = "{name}"')
                    .replace("outside_eea = []", f"outside_eea = {outside_eea}"), encoding="utf-8")
    return path


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_every_section_every_personal_column_and_every_channel_in_each_language(register_engine, capsys, lang):
    status, out, err = _describe(capsys, register_engine, "--lang", lang)
    assert status == 0, err
    assert _headings(out) == SECTIONS[lang], "sections missing, extra or out of order"
    assert out.count("\n# ") + out.startswith("# ") == 2, "the notice and the record"
    inspector = sa.inspect(register_engine)
    doc = documented()["tables"]
    notice = out.split("\n# ", 1)[0]
    for table in PERSONAL_TABLES:
        for column in (c["name"] for c in inspector.get_columns(table)):
            meaning = _plain(doc[table][column].meaning)
            assert meaning, f"{table}.{column} has no documented meaning"
            assert f"- {column} (" in notice and (meaning in notice or column in notice), \
                f"{table}.{column} is not among the categories"
    for channel in CHANNELS:
        assert f"({channel})" in notice, f"channel {channel} is not among the sources"
    assert AUTHORITY[lang] in out
    rights = notice.split(f"## {SECTIONS[lang][8]}", 1)[1].split("\n## ", 1)[0]
    assert all(article in rights for article in RIGHTS_ARTICLES)
    for role in ROLES:
        assert role in notice, f"access by role: {role} not named"
    config = load_config()
    for value in (config["controller"]["name"], config["controller"]["business_id"],
                  config["data_protection_officer"]["contact"]):
        assert value in out


def test_an_undocumented_column_or_table_stops_it_naming_them(register_engine, capsys):
    with register_engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE customer ADD COLUMN nickname TEXT")
        connection.exec_driver_sql("CREATE TABLE loyalty_note (note_id INTEGER PRIMARY KEY, note TEXT)")
    try:
        status, out, err = _describe(capsys, register_engine, "--lang", "en")
    finally:
        with register_engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE loyalty_note")
            connection.exec_driver_sql("ALTER TABLE customer DROP COLUMN nickname")
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "not described in docs/data_dictionary.md" in err
    assert "customer.nickname" in err and "loyalty_note" in err
    # And with the schema back as documented, it describes again.
    assert _describe(capsys, register_engine, "--lang", "en")[0] == 0


def test_the_settings_it_names_are_the_configured_ones(register_engine, capsys, monkeypatch, tmp_path):
    for variable in ("REGISTER_QUARANTINE_RETENTION_DAYS", "REGISTER_EXTRACT_RETENTION_DAYS",
                     "REGISTER_MARKETING_RECIPIENT", "REGISTER_MARKETING_PURPOSE", "REGISTER_MARKETING_LEGAL_BASIS"):
        monkeypatch.delenv(variable, raising=False)
    _, out, _ = _describe(capsys, register_engine, "--lang", "en")
    assert DAYS["en"].format(n=DEFAULT_QUARANTINE_DAYS) in out and DAYS["en"].format(n=DEFAULT_EXTRACT_DAYS) in out
    assert "the utility's direct-marketing partner" in out
    assert "not transferred outside the EU/EEA" in out

    monkeypatch.setenv("REGISTER_QUARANTINE_RETENTION_DAYS", "45")
    monkeypatch.setenv("REGISTER_EXTRACT_RETENTION_DAYS", "3")
    monkeypatch.setenv("REGISTER_MARKETING_RECIPIENT", "X Oy (synthetic)")
    config = _config(tmp_path, outside_eea='["Pilvipalvelu Inc. (synthetic), USA: EU standard contractual clauses"]')
    for lang in ("fi", "sv", "en"):
        status, out, err = _describe(capsys, register_engine, "--lang", lang, "--config", str(config))
        assert status == 0, err
        assert DAYS[lang].format(n=45) in out and DAYS[lang].format(n=3) in out, lang
        assert DAYS[lang].format(n=DEFAULT_QUARANTINE_DAYS) not in out
        assert "X Oy (synthetic)" in out and "direct-marketing partner" not in out
        assert "Testi Sähkö Oy (synthetic)" in out and "Esimerkki Energia Oy" not in out
        assert "Pilvipalvelu Inc. (synthetic)" in out

    monkeypatch.setenv("REGISTER_QUARANTINE_RETENTION_DAYS", "soon")
    status, out, err = _describe(capsys, register_engine, "--lang", "fi")
    assert status == 2 and "REGISTER_QUARANTINE_RETENTION_DAYS" in err and out == ""


def test_html_escapes_every_value(register_engine, capsys, tmp_path):
    config = _config(tmp_path, name="Ohm <b>& Co Oy")
    status, out, err = _describe(capsys, register_engine, "--lang", "sv", "--format", "html",
                                 "--config", str(config))
    assert status == 0, err
    assert out.startswith("<!DOCTYPE html>") and '<html lang="sv">' in out
    assert "Ohm &lt;b&gt;&amp; Co Oy" in out and "<b>" not in out
    assert out.count("<h1>") == 2 and out.count("<h2>") == len(SECTIONS["sv"])
    assert "<h2>Den registrerades rättigheter</h2>" in out


def test_out_writes_a_new_file_and_never_overwrites(register_engine, capsys, tmp_path):
    target = tmp_path / "rekisteriseloste.md"
    status, out, _ = _describe(capsys, register_engine, "--lang", "fi", "--out", str(target))
    assert status == 0 and str(target) in out
    written = target.read_text(encoding="utf-8")
    assert _headings(written) == SECTIONS["fi"]
    target.write_text("kept", encoding="utf-8")
    status, _, err = _describe(capsys, register_engine, "--lang", "fi", "--out", str(target))
    assert status == 2 and "exists already" in err
    assert target.read_text(encoding="utf-8") == "kept"


def test_a_broken_configuration_is_one_line(register_engine, capsys, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('[controller]\nname = "Esimerkki Energia Oy"\n', encoding="utf-8")
    status, out, err = _describe(capsys, register_engine, "--lang", "en", "--config", str(broken))
    assert status == 2 and out == "" and "controller.business_id" in err and "data_protection_officer" in err
    status, _, err = _describe(capsys, register_engine, "--lang", "en", "--config", str(tmp_path / "none.toml"))
    assert status == 2 and "no configuration file" in err


def test_it_never_holds_a_customers_value(register_engine, capsys):
    now = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)
    with register_engine.begin() as connection:
        connection.execute(customer.insert().values(**SYNTHETIC, identity_verified=False,
                                                    created_at=now, updated_at=now))
    for lang in ("fi", "sv", "en"):
        for fmt in ("md", "html"):
            status, out, err = _describe(capsys, register_engine, "--lang", lang, "--format", fmt)
            assert status == 0, err
            assert [k for k, v in SYNTHETIC.items() if v in out] == [], "a customer's value in the description"
