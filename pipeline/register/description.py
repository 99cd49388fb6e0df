"""The register description, generated from the register (issue 12, item 4).

`describe(engine, lang)` builds the privacy notice (GDPR articles 13 and 14) and the
record of processing activities (article 30) for the customer register in Finnish,
Swedish or English; `render(document, "md" | "html")` writes it out. It is built from:

- the live schema (SQLAlchemy's inspector: table and column names, never a row) and
  docs/data_dictionary.md (what each table and column means): the categories of
  personal data are the columns of `customer` and `source_record`. A table, view or
  column of the database that the dictionary does not describe stops it
  (`DescriptionError` naming it): the description would be incomplete;
- the intake channels (`schemas.canonical.CHANNELS`) as the sources;
- the retention settings in force (`REGISTER_QUARANTINE_RETENTION_DAYS`,
  `REGISTER_EXTRACT_RETENTION_DAYS`, else the defaults of `pipeline.register.retention`),
  the PostgreSQL group roles, and the disclosure terms (`marketing_terms()`);
- the controller's details from config/register_description.toml (`tomllib`).

`documented()` parses the data dictionary; tests/test_data_dictionary.py uses it too.
"""

from __future__ import annotations

import html
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from pipeline.register.disclosures import marketing_terms
from pipeline.register.retention import DEFAULT_EXTRACT_DAYS, DEFAULT_QUARANTINE_DAYS
from schemas.canonical import CHANNELS
from schemas.register import ANALYST_VIEWS, MARKETING_VIEWS

__all__ = ["DescriptionError", "DocumentedColumn", "Document", "LANGUAGES", "FORMATS", "describe",
           "documented", "personal_data_columns", "render", "undocumented"]

ROOT = Path(__file__).resolve().parents[2]
DICTIONARY = ROOT / "docs" / "data_dictionary.md"
DEFAULT_CONFIG = ROOT / "config" / "register_description.toml"
EXAMPLES_HEADING = "## Example analyst queries"
PERSONAL_TABLES = ("customer", "source_record")
LANGUAGES = ("fi", "sv", "en")
FORMATS = ("md", "html")


class DescriptionError(Exception):
    """The description cannot be made truthfully (an undocumented column, a bad setting or configuration)."""


# --- the data dictionary ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DocumentedColumn:
    type: str
    readers: frozenset[str]      # roles that read the column itself
    through: frozenset[str]      # analyst views that show (something of) it
    meaning: str = ""


_OBJECT = re.compile(r"^### `(\w+)`\s*$")
_ROW = re.compile(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \| (.+) \|\s*$")


def _readers(cell: str) -> tuple[frozenset[str], frozenset[str]]:
    """`loader, steward; analyst through `customer_masked`; marketing through ...` -> direct
    roles, and the analyst views named."""
    direct, *indirect = cell.split(";")
    roles = frozenset(r.strip() for r in direct.split(","))
    analyst = [part for part in indirect if part.strip().startswith("analyst through")]
    return roles, frozenset(re.findall(r"`(\w+)`", "".join(analyst)))


def documented(path: Path = DICTIONARY) -> dict[str, dict[str, dict[str, DocumentedColumn]]]:
    """{"tables" | "views": {object: {column: DocumentedColumn}}} from the data dictionary."""
    found: dict[str, dict] = {"tables": {}, "views": {}}
    section = current = None
    for line in Path(path).read_text(encoding="utf-8").split(EXAMPLES_HEADING)[0].splitlines():
        if line.startswith("## "):
            section = {"## Tables": "tables", "## Views": "views"}.get(line.strip())
            current = None
        elif section and (heading := _OBJECT.match(line)):
            current = found[section].setdefault(heading.group(1), {})
        elif current is not None and (row := _ROW.match(line)):
            name, sql_type, cell, meaning = row.groups()
            current[name] = DocumentedColumn(sql_type, *_readers(cell), meaning.strip())
    return found


def _live_schema(bind: sa.Engine | sa.Connection) -> dict[str, dict[str, list[str]]]:
    """{"tables" | "views": {name: [column, ...]}} of the database (names only, never a row)."""
    inspector = sa.inspect(bind)
    return {section: {name: [c["name"] for c in inspector.get_columns(name)] for name in names}
            for section, names in (("tables", inspector.get_table_names()), ("views", inspector.get_view_names()))}


def undocumented(schema: dict[str, dict[str, list[str]]], doc: dict) -> list[str]:
    """Tables, views (`name`) and columns (`name.column`) of the live schema the dictionary does not describe."""
    missing = []
    for section, objects in schema.items():
        for name, columns in sorted(objects.items()):
            if name not in doc[section]:
                missing.append(name)
                continue
            missing.extend(f"{name}.{c}" for c in columns if c not in doc[section][name])
    return missing


def _plain(markdown: str) -> str:
    """A dictionary cell as plain text: links as their words, no backticks."""
    return re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", markdown).replace("`", "")


def personal_data_columns(schema: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """{column: [tables]} of the columns of `customer` and `source_record`: every one is about a person."""
    found: dict[str, list[str]] = {}
    for table in PERSONAL_TABLES:
        for column in schema["tables"].get(table, []):
            found.setdefault(column, []).append(table)
    return found


# --- settings and configuration --------------------------------------------------------------------

def _days(variable: str, default: int) -> int:
    value = os.environ.get(variable)
    if not value:
        return default
    try:
        days = int(value)
    except ValueError:
        raise DescriptionError(f"{variable} is not a whole number of days") from None
    if days < 1:
        raise DescriptionError(f"{variable} must be at least 1")
    return days


def retention_days() -> tuple[int, int]:
    """(quarantine raw values, marketing extracts) in days, as the pipeline configures them."""
    return (_days("REGISTER_QUARANTINE_RETENTION_DAYS", DEFAULT_QUARANTINE_DAYS),
            _days("REGISTER_EXTRACT_RETENTION_DAYS", DEFAULT_EXTRACT_DAYS))


def load_config(path: Path | None = None) -> dict:
    """The controller's details, checked for the keys the description needs."""
    path = Path(path or DEFAULT_CONFIG)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DescriptionError(f"no configuration file at {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise DescriptionError(f"{path} is not valid TOML: {error}") from None
    needed = [("controller", "name"), ("controller", "business_id"), ("controller", "address"),
              ("controller", "contact"), ("data_protection_officer", "contact")]
    missing = [f"{table}.{key}" for table, key in needed if not str(config.get(table, {}).get(key, "")).strip()]
    if missing:
        raise DescriptionError(f"{path} lacks {', '.join(missing)}")
    return config


# --- the words ---------------------------------------------------------------------------------------

WORDS: dict[str, dict] = {
    "fi": {
        "notice": "Tietosuojaseloste: asiakasrekisteri (EU:n tietosuoja-asetus, 13 ja 14 artikla)",
        "record": "Seloste käsittelytoimista (EU:n tietosuoja-asetus, 30 artikla)",
        "controller": "Rekisterinpitäjä ja yhteystiedot", "dpo": "Tietosuojavastaava",
        "purposes": "Käsittelyn tarkoitukset ja oikeusperusteet", "categories": "Henkilötietoryhmät",
        "sources": "Tietolähteet", "recipients": "Vastaanottajat ja luovutukset",
        "transfers": "Siirrot EU:n tai ETA:n ulkopuolelle", "retention": "Säilytysajat",
        "rights": "Rekisteröidyn oikeudet", "security": "Tietoturva",
        "r_controller": "Rekisterinpitäjä", "r_purposes": "Käsittelyn tarkoitukset",
        "r_subjects": "Rekisteröityjen ryhmät ja henkilötietoryhmät", "r_recipients": "Vastaanottajat",
        "r_security": "Tekniset ja organisatoriset turvatoimet",
        "name": "Nimi", "business_id": "Y-tunnus", "address": "Osoite", "contact": "Yhteystiedot",
        "dpo_contact": "Tietosuojavastaavan yhteystiedot",
        "purpose_items": [
            "Asiakassuhteen hoito, sopimukset ja laskutus; oikeusperuste: sopimus (6 artiklan 1 kohdan b alakohta)",
            "Lakisääteiset velvoitteet, kuten kirjanpito; oikeusperuste: lakisääteinen velvoite "
            "(6 artiklan 1 kohdan c alakohta)",
            "Rekisteröityjen oikeuksien toteuttaminen; oikeusperuste: lakisääteinen velvoite "
            "(6 artiklan 1 kohdan c alakohta)",
        ],
        "marketing_purpose": "Suoramarkkinointi ({purpose}); oikeusperuste: {legal_basis}",
        "categories_intro": "Rekisterissä käsitellään seuraavia tietoja (taulut customer ja source_record; "
                            "kuvaukset rekisterin tietokuvauksesta docs/data_dictionary.md, englanniksi):",
        "groups": {"identity": "Henkilöllisyys", "contact": "Yhteystiedot", "payment": "Maksutiedot",
                   "contract": "Sopimus- ja käyttöpaikkatiedot", "marketing": "Suoramarkkinointia koskevat valinnat",
                   "register": "Rekisterin hallintotiedot", "other": "Muut tiedot"},
        "sources_intro": "Tiedot saadaan rekisteröidyltä itseltään näiden asiointikanavien kautta:",
        "channels": {"web": "verkkoasiointi", "phone": "puhelin", "mail": "kirje", "email": "sähköposti",
                     "in_person": "asiointi palvelupisteessä"},
        "marketing_recipient": "Suoramarkkinointi: vastaanottaja {recipient}; tarkoitus: {purpose}; "
                               "oikeusperuste: {legal_basis}. Luovutettavalla listalla ovat vain täysi-ikäiset, "
                               "jotka eivät ole kieltäneet suoramarkkinointia.",
        "subject_recipient": "Rekisteröity itse: vastaus tarkastuspyyntöön (15 artikla) ja vahvistus "
                             "tietojen poistamisesta (17 artikla).",
        "disclosure_log": "Jokainen luovutus kirjataan luovutuslokiin.",
        "no_transfers": "Tietoja ei siirretä EU:n tai ETA:n ulkopuolelle.",
        "transfers_intro": "Tietoja siirretään EU:n tai ETA:n ulkopuolelle:",
        "retention_items": [
            "Asiakastietoja säilytetään asiakassuhteen ajan ja sen jälkeen niin kauan kuin laki edellyttää. "
            "Poistopyynnön jälkeen asiakkaasta säilytetään vain laskutuksen edellyttämät tunnistetiedot.",
            "Karanteeniin jääneiden tietueiden alkuperäiset arvot poistetaan {quarantine_days} päivän kuluttua.",
            "Suoramarkkinoinnin poimintatiedostot poistetaan {extract_days} päivän kuluttua (uusin säilytetään).",
        ],
        "rights_intro": "Sinulla on oikeus",
        "rights_items": [
            "tarkastaa itseäsi koskevat tiedot (15 artikla)",
            "vaatia virheellisten tietojen oikaisemista (16 artikla)",
            "vaatia tietojesi poistamista (17 artikla)",
            "vastustaa tietojesi käsittelyä suoramarkkinointia varten (21 artikla)",
            "tehdä valitus valvontaviranomaiselle: Tietosuojavaltuutetun toimisto (tietosuoja.fi)",
        ],
        "requests": "Pyynnöt: {contact}",
        "roles_intro": "Tietoihin pääsee vain henkilökohtaisilla tunnuksilla, roolin mukaan:",
        "roles": {"loader": "lataus (register_loader): yöllinen lataus ja tunnistaminen, kaikki taulut",
                  "steward": "tietojen ylläpitäjä (register_steward): tarkistukset, oikaisut ja poistot, "
                             "kaikki taulut",
                  "analyst": "analyytikko (register_analyst): vain pseudonymisoidut näkymät {views}, "
                             "ei nimiä eikä yhteystietoja",
                  "marketing": "markkinointi (register_marketing): vain suoramarkkinointilista {views}"},
        "masking": "Ylläpitotyökalut näyttävät henkilötiedot peitettyinä, ellei niitä erikseen pyydetä.",
        "logging": "Luovutukset ja rekisteröityjen pyynnöt kirjataan lokiin ilman henkilötietoja.",
        "subjects": "Rekisteröidyt: energiayhtiön asiakkaat ja asiakkaaksi aikovat, jotka ovat asioineet "
                    "kanavissa {channels}.",
    },
    "sv": {
        "notice": "Dataskyddsbeskrivning: kundregistret (EU:s dataskyddsförordning, artiklarna 13 och 14)",
        "record": "Register över behandling (EU:s dataskyddsförordning, artikel 30)",
        "controller": "Personuppgiftsansvarig och kontaktuppgifter", "dpo": "Dataskyddsombud",
        "purposes": "Ändamål och rättslig grund", "categories": "Kategorier av personuppgifter",
        "sources": "Uppgiftskällor", "recipients": "Mottagare och utlämnanden",
        "transfers": "Överföringar utanför EU/EES", "retention": "Lagringstid",
        "rights": "Den registrerades rättigheter", "security": "Säkerhet",
        "r_controller": "Personuppgiftsansvarig", "r_purposes": "Ändamål med behandlingen",
        "r_subjects": "Kategorier av registrerade och av personuppgifter", "r_recipients": "Mottagare",
        "r_security": "Tekniska och organisatoriska säkerhetsåtgärder",
        "name": "Namn", "business_id": "FO-nummer", "address": "Adress", "contact": "Kontaktuppgifter",
        "dpo_contact": "Dataskyddsombudets kontaktuppgifter",
        "purpose_items": [
            "Skötsel av kundrelationen, avtal och fakturering; rättslig grund: avtal (artikel 6.1 b)",
            "Rättsliga förpliktelser, såsom bokföring; rättslig grund: rättslig förpliktelse (artikel 6.1 c)",
            "Tillgodoseende av de registrerades rättigheter; rättslig grund: rättslig förpliktelse (artikel 6.1 c)",
        ],
        "marketing_purpose": "Direktmarknadsföring ({purpose}); rättslig grund: {legal_basis}",
        "categories_intro": "I registret behandlas följande uppgifter (tabellerna customer och source_record; "
                            "beskrivningarna ur registrets databeskrivning docs/data_dictionary.md, på engelska):",
        "groups": {"identity": "Identitet", "contact": "Kontaktuppgifter", "payment": "Betalningsuppgifter",
                   "contract": "Avtals- och förbrukningsplatsuppgifter", "marketing": "Val om direktmarknadsföring",
                   "register": "Registrets administrativa uppgifter", "other": "Övriga uppgifter"},
        "sources_intro": "Uppgifterna fås av den registrerade själv via dessa kanaler:",
        "channels": {"web": "webbtjänsten", "phone": "telefon", "mail": "brev", "email": "e-post",
                     "in_person": "besök på kundtjänst"},
        "marketing_recipient": "Direktmarknadsföring: mottagare {recipient}; ändamål: {purpose}; "
                               "rättslig grund: {legal_basis}. Listan omfattar endast myndiga som inte har "
                               "förbjudit direktmarknadsföring.",
        "subject_recipient": "Den registrerade själv: svar på begäran om tillgång (artikel 15) och bekräftelse "
                             "på radering (artikel 17).",
        "disclosure_log": "Varje utlämnande förs in i en logg över utlämnanden.",
        "no_transfers": "Uppgifterna överförs inte utanför EU/EES.",
        "transfers_intro": "Uppgifterna överförs utanför EU/EES:",
        "retention_items": [
            "Kunduppgifterna sparas under kundrelationen och därefter så länge lagen kräver. Efter en begäran "
            "om radering sparas endast de identifieringsuppgifter som faktureringen kräver.",
            "De ursprungliga värdena i poster i karantän raderas efter {quarantine_days} dagar.",
            "Uttagsfiler för direktmarknadsföring raderas efter {extract_days} dagar (den senaste sparas).",
        ],
        "rights_intro": "Du har rätt att",
        "rights_items": [
            "få tillgång till dina uppgifter (artikel 15)",
            "få felaktiga uppgifter rättade (artikel 16)",
            "få dina uppgifter raderade (artikel 17)",
            "invända mot behandling för direktmarknadsföring (artikel 21)",
            "lämna in klagomål till tillsynsmyndigheten: Dataombudsmannens byrå (tietosuoja.fi)",
        ],
        "requests": "Begäranden: {contact}",
        "roles_intro": "Uppgifterna nås endast med personliga användarnamn, enligt roll:",
        "roles": {"loader": "laddning (register_loader): nattlig laddning och identifiering, alla tabeller",
                  "steward": "dataförvaltare (register_steward): granskningar, rättelser och raderingar, "
                             "alla tabeller",
                  "analyst": "analytiker (register_analyst): endast de pseudonymiserade vyerna {views}, "
                             "inga namn eller kontaktuppgifter",
                  "marketing": "marknadsföring (register_marketing): endast direktmarknadsföringslistan {views}"},
        "masking": "Förvaltningsverktygen visar personuppgifter maskerade om de inte uttryckligen begärs.",
        "logging": "Utlämnanden och de registrerades begäranden loggas utan personuppgifter.",
        "subjects": "Registrerade: energibolagets kunder och blivande kunder som har kontaktat bolaget via "
                    "kanalerna {channels}.",
    },
    "en": {
        "notice": "Privacy notice: customer register (GDPR articles 13 and 14)",
        "record": "Record of processing activities (GDPR article 30)",
        "controller": "Controller and contact", "dpo": "Data protection officer",
        "purposes": "Purposes and legal bases", "categories": "Categories of personal data",
        "sources": "Sources", "recipients": "Recipients and disclosures",
        "transfers": "Transfers outside the EU/EEA", "retention": "Retention",
        "rights": "Your rights", "security": "Security",
        "r_controller": "Controller", "r_purposes": "Purposes of the processing",
        "r_subjects": "Categories of data subjects and of personal data", "r_recipients": "Recipients",
        "r_security": "Technical and organisational security measures",
        "name": "Name", "business_id": "Business ID", "address": "Address", "contact": "Contact",
        "dpo_contact": "Data protection officer's contact",
        "purpose_items": [
            "Managing the customer relationship, contracts and billing; legal basis: contract (art. 6(1)(b))",
            "Legal obligations such as bookkeeping; legal basis: legal obligation (art. 6(1)(c))",
            "Answering data subjects' requests; legal basis: legal obligation (art. 6(1)(c))",
        ],
        "marketing_purpose": "Direct marketing ({purpose}); legal basis: {legal_basis}",
        "categories_intro": "The register processes these data (tables customer and source_record; meanings "
                            "from the register's data dictionary, docs/data_dictionary.md):",
        "groups": {"identity": "Identity", "contact": "Contact details", "payment": "Payment details",
                   "contract": "Contract and metering point", "marketing": "Direct-marketing choices",
                   "register": "Register administration", "other": "Other data"},
        "sources_intro": "The data comes from the data subject, through these channels:",
        "channels": {"web": "online service", "phone": "telephone", "mail": "letter", "email": "e-mail",
                     "in_person": "in person at a service point"},
        "marketing_recipient": "Direct marketing: recipient {recipient}; purpose: {purpose}; legal basis: "
                               "{legal_basis}. The list holds only adults who have not prohibited direct marketing.",
        "subject_recipient": "The data subject: the answer to an access request (art. 15) and the confirmation "
                             "of an erasure (art. 17).",
        "disclosure_log": "Every disclosure is recorded in the disclosure log.",
        "no_transfers": "The data is not transferred outside the EU/EEA.",
        "transfers_intro": "The data is transferred outside the EU/EEA:",
        "retention_items": [
            "Customer data is kept for the customer relationship and after it as long as the law requires. "
            "After an erasure request only the identity needed for billing is kept.",
            "The raw values of quarantined records are removed after {quarantine_days} days.",
            "Direct-marketing extract files are removed after {extract_days} days (the newest is kept).",
        ],
        "rights_intro": "You have the right to",
        "rights_items": [
            "access your data (art. 15)",
            "have inaccurate data rectified (art. 16)",
            "have your data erased (art. 17)",
            "object to processing for direct marketing (art. 21)",
            "lodge a complaint with the supervisory authority: the Office of the Data Protection Ombudsman "
            "(tietosuoja.fi)",
        ],
        "requests": "Requests: {contact}",
        "roles_intro": "The data is reached only with personal accounts, by role:",
        "roles": {"loader": "loader (register_loader): the nightly load and identity resolution, every table",
                  "steward": "steward (register_steward): reviews, rectification and erasure, every table",
                  "analyst": "analyst (register_analyst): the pseudonymous views {views} only, no name and "
                             "no contact detail",
                  "marketing": "marketing (register_marketing): the direct-marketing list {views} only"},
        "masking": "The stewards' tools show personal values masked unless asked for.",
        "logging": "Disclosures and data subjects' requests are logged without personal values.",
        "subjects": "Data subjects: the utility's customers and prospective customers who contacted it "
                    "through the channels {channels}.",
    },
}

GROUP_OF: dict[str, str] = {
    **dict.fromkeys(("personal_id", "birth_date", "first_names", "last_name", "identity_verified"), "identity"),
    **dict.fromkeys(("street_address", "postal_code", "city", "phone", "email"), "contact"),
    **dict.fromkeys(("iban", "bic"), "payment"),
    **dict.fromkeys(("product", "metering_point"), "contract"),
    "marketing_prohibited": "marketing",
    **dict.fromkeys(("customer_id", "created_at", "updated_at", "merged_into", "erased_at", "source_record_pk",
                     "channel", "source_record_id", "intake_file_id", "record_number", "observed_at",
                     "match_method", "match_probability", "quality_flags", "loaded_at", "run_id",
                     "content_hash"), "register"),
}
GROUPS = ("identity", "contact", "payment", "contract", "marketing", "register", "other")


# --- the document ------------------------------------------------------------------------------------

@dataclass
class Section:
    title: str
    blocks: list[tuple[str, str | list[str]]] = field(default_factory=list)  # ("p", text) | ("ul", [items])

    def p(self, text: str) -> "Section":
        self.blocks.append(("p", text))
        return self

    def ul(self, items: list[str]) -> "Section":
        self.blocks.append(("ul", list(items)))
        return self


@dataclass
class Document:
    lang: str
    parts: list[tuple[str, list[Section]]]  # (title, sections): the notice, then the record


def describe(bind: sa.Engine | sa.Connection, lang: str, *, config_path: Path | None = None,
             dictionary_path: Path = DICTIONARY) -> Document:
    """The privacy notice and the article-30 record in `lang`, from the schema and the configuration only."""
    if lang not in WORDS:
        raise DescriptionError(f"no description in language {lang!r} (one of {', '.join(LANGUAGES)})")
    w = WORDS[lang]
    config = load_config(config_path)
    doc = documented(dictionary_path)
    schema = _live_schema(bind)
    missing = undocumented(schema, doc)
    if missing:
        raise DescriptionError("not described in docs/data_dictionary.md, so the description would be "
                               f"incomplete: {', '.join(missing)}")
    quarantine_days, extract_days = retention_days()
    terms = marketing_terms()
    controller, dpo = config["controller"], config["data_protection_officer"]
    outside = [str(t) for t in config.get("transfers", {}).get("outside_eea", [])]
    security_summary = str(config.get("security", {}).get(f"summary_{lang}", "")).strip()

    controller_items = [f"{w['name']}: {controller['name']}", f"{w['business_id']}: {controller['business_id']}",
                        f"{w['address']}: {controller['address']}", f"{w['contact']}: {controller['contact']}"]
    purposes = [*w["purpose_items"], w["marketing_purpose"].format(purpose=terms.purpose,
                                                                    legal_basis=terms.legal_basis)]
    columns = personal_data_columns(schema)
    grouped: dict[str, list[str]] = {g: [] for g in GROUPS}
    for column, tables in columns.items():
        meaning = _plain(doc["tables"][tables[0]][column].meaning)
        grouped[GROUP_OF.get(column, "other")].append(f"{column} ({', '.join(tables)}): {meaning}")
    channels = [f"{w['channels'].get(c, c)} ({c})" for c in CHANNELS]
    recipients = [w["marketing_recipient"].format(recipient=terms.recipient, purpose=terms.purpose,
                                                  legal_basis=terms.legal_basis),
                  w["subject_recipient"], w["disclosure_log"]]
    retention = [item.format(quarantine_days=quarantine_days, extract_days=extract_days)
                 for item in w["retention_items"]]
    roles = [w["roles"]["loader"], w["roles"]["steward"],
             w["roles"]["analyst"].format(views=", ".join(ANALYST_VIEWS)),
             w["roles"]["marketing"].format(views=", ".join(MARKETING_VIEWS))]

    def transfers(section: Section) -> Section:
        return section.p(w["no_transfers"]) if not outside else section.p(w["transfers_intro"]).ul(outside)

    def categories(section: Section, *, meanings: bool) -> Section:
        for group in GROUPS:
            if grouped[group]:
                items = grouped[group] if meanings else [", ".join(i.split(" (", 1)[0] for i in grouped[group])]
                section.p(w["groups"][group] + ":").ul(items)
        return section

    def security(section: Section) -> Section:
        section.p(w["roles_intro"]).ul(roles).p(w["masking"]).p(w["logging"])
        return section.p(security_summary) if security_summary else section

    notice = [
        Section(w["controller"]).ul(controller_items),
        Section(w["dpo"]).p(f"{w['dpo_contact']}: {dpo['contact']}"),
        Section(w["purposes"]).ul(purposes),
        categories(Section(w["categories"]).p(w["categories_intro"]), meanings=True),
        Section(w["sources"]).p(w["sources_intro"]).ul(channels),
        Section(w["recipients"]).ul(recipients),
        transfers(Section(w["transfers"])),
        Section(w["retention"]).ul(retention),
        Section(w["rights"]).p(w["rights_intro"] + ":").ul(w["rights_items"])
        .p(w["requests"].format(contact=dpo["contact"])),
        security(Section(w["security"])),
    ]
    record = [
        Section(w["r_controller"]).ul([*controller_items, f"{w['dpo_contact']}: {dpo['contact']}"]),
        Section(w["r_purposes"]).ul(purposes),
        categories(Section(w["r_subjects"]).p(w["subjects"].format(channels=", ".join(CHANNELS))), meanings=False),
        Section(w["r_recipients"]).ul(recipients),
        transfers(Section(w["transfers"])),
        Section(w["retention"]).ul(retention),
        security(Section(w["r_security"])),
    ]
    return Document(lang, [(w["notice"], notice), (w["record"], record)])


# --- rendering ----------------------------------------------------------------------------------------

def render(document: Document, fmt: str = "md") -> str:
    """The document as Markdown, or as simple HTML with every text HTML-escaped."""
    if fmt == "md":
        lines: list[str] = []
        for title, sections in document.parts:
            lines += [f"# {title}", ""]
            for section in sections:
                lines += [f"## {section.title}", ""]
                for kind, content in section.blocks:
                    lines += [f"- {item}" for item in content] if kind == "ul" else [content]
                    lines.append("")
        return "\n".join(lines).rstrip("\n") + "\n"
    if fmt != "html":
        raise DescriptionError(f"no format {fmt!r} (one of {', '.join(FORMATS)})")
    e = html.escape
    out = ["<!DOCTYPE html>", f'<html lang="{e(document.lang)}">', "<head>", '<meta charset="utf-8">',
           f"<title>{e(document.parts[0][0])}</title>", "</head>", "<body>"]
    for title, sections in document.parts:
        out.append(f"<h1>{e(title)}</h1>")
        for section in sections:
            out.append(f"<h2>{e(section.title)}</h2>")
            for kind, content in section.blocks:
                if kind == "ul":
                    out += ["<ul>", *[f"<li>{e(item)}</li>" for item in content], "</ul>"]
                else:
                    out.append(f"<p>{e(content)}</p>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
