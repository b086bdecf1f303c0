"""The method page (docs/methodologie.md as HTML) and the sources page."""
from __future__ import annotations

import re
from pathlib import Path

from dagster_project.publish.exports.texts import REFERENCE_DATA, count_word, weights_text
from dagster_project.settings import PROJECT_ROOT

METHOD_DOC = PROJECT_ROOT / "docs" / "methodologie.md"


def method_html(doc: Path = METHOD_DOC) -> str:
    """docs/methodologie.md as HTML when present; a built-in summary otherwise.

    Links to other files of the repository do not exist in the site: they become text.
    """
    if doc.exists():
        import markdown

        # a column's alignment as align="…", not style="…": the CSP allows no inline style
        html = markdown.markdown(doc.read_text(encoding="utf-8"), extensions=["tables"],
                                 extension_configs={"tables": {"use_align_attribute": True}})
        html = re.sub(r'<a href="(?!https?://|#)[^"]*">(.*?)</a>', r"\1", html, flags=re.DOTALL)
        return re.sub(r"<img [^>]*>", "", html)
    weights = weights_text()
    items = "".join(f"<li><strong>{name}</strong> (poids {w}) : {text}.</li>"
                    for name, w, text in weights)
    return f"""<h1>Méthode</h1>
<p>Chaque mois, chaque compte Instagram enregistré d'une collectivité est relevé ; le relevé de
référence est le dernier relevé réussi du mois. Un compte sans relevé réussi n'est pas classé et
fait l'objet d'une alerte. Les comptes sont classés au sein de leur catégorie (régions,
départements, métropoles, communautés d'agglomération, communautés de communes, grandes villes,
villes moyennes, petites villes).</p>
<p>{count_word(len(weights)).capitalize()} indicateurs sont calculés, puis convertis en rang centile (0 à 1) au sein de la
catégorie :</p><ul>{items}</ul>
<p>Le score (0 à 100) est la moyenne pondérée de ces rangs centiles, arrondie à six décimales.
À score égal, le compte qui a le plus d'abonnés passe devant, puis l'ordre des codes.
L'évolution compare le rang à celui du mois précédent (« nouveau » : non classé le mois
précédent). Le mois en cours est marqué provisoire.</p>
<p>Meilleures publications : parmi les publications des 30 jours précédant le relevé de
référence des comptes classés, l'engagement d'une publication est (mentions J'aime +
commentaires) ÷ abonnés du compte ; les dix meilleures de chaque catégorie sont retenues (les
publications aux mentions J'aime masquées n'y figurent pas ; les vues des reels sont affichées
mais n'entrent pas dans le calcul).</p>
<p>Mentions J'aime masquées : le taux d'engagement d'un compte est calculé sur ses seules
publications aux J'aime visibles. Si toutes ses publications des 30 jours les masquent, son taux
d'engagement est « masqué » : il reste classé, son score étant la moyenne pondérée des autres
indicateurs, leurs poids ramenés au même total.</p>"""


SOURCES_HTML = f"""<h1>Sources et licences</h1>
<h2>Données Instagram</h2>
<p>Les chiffres des comptes (abonnés, abonnements, publications, mentions J'aime et commentaires)
proviennent de l'API Graph d'Instagram (fonction <em>business_discovery</em> : données publiques
des comptes professionnels et créateurs), relevées chaque mois. Les données de démonstration sont
simulées et signalées sur chaque page.</p>
<h2>Territoires</h2>
<p>{REFERENCE_DATA}.</p>
<h2>Ce site</h2>
<p>Ce site est un dossier de fichiers statiques : il ne charge rien depuis un autre site (ni
police, ni bibliothèque, ni mesure d'audience) et fonctionne hors ligne. Les classements complets
sont téléchargeables (<a href="telechargements.html">Téléchargements</a>).</p>"""
