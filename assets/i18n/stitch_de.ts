<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de" sourcelanguage="en">
    <context>
        <name>stitch</name>
        <message>
            <location filename="../../app/gui/__init__.py" />
            <source>Updater</source>
            <translation>Updater</translation>
        </message>
        <message>
            <location filename="../../app/gui/__init__.py" />
            <location filename="../../app/gui/text.py" />
            <source>The updater's settings file has a problem, so it cannot update. Tell the publisher of the game.</source>
            <translation>Die Einstellungsdatei des Updaters ist fehlerhaft, daher kann er nicht aktualisieren. Bitte wende dich an den Herausgeber des Spiels.</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>checking</source>
            <translation>wird geprüft</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>scanned</source>
            <translation>durchsucht</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>planned</source>
            <translation>geplant</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>downloading</source>
            <translation>wird heruntergeladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>rebuilt</source>
            <translation>neu erstellt</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>verified</source>
            <translation>überprüft</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>installed</source>
            <translation>installiert</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>done</source>
            <translation>fertig</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>File</source>
            <translation>Datei</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" />
            <source>Activity</source>
            <translation>Vorgang</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Checking for updates</source>
            <translation>Suche nach Updates</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Scanning local files</source>
            <translation>Lokale Dateien werden durchsucht</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Planning the update</source>
            <translation>Update wird geplant</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Downloading</source>
            <translation>Herunterladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Rebuilding files</source>
            <translation>Dateien werden neu erstellt</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Verifying files</source>
            <translation>Dateien werden überprüft</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Installing</source>
            <translation>Installation</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <location filename="../../app/gui/window.py" />
            <source>Done</source>
            <translation>Fertig</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while checking for updates</source>
            <translation>Bei der Suche nach Updates angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while scanning local files</source>
            <translation>Beim Durchsuchen der lokalen Dateien angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while planning the update</source>
            <translation>Beim Planen des Updates angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while downloading</source>
            <translation>Beim Herunterladen angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while rebuilding files</source>
            <translation>Beim Neuerstellen der Dateien angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while verifying files</source>
            <translation>Beim Überprüfen der Dateien angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped while installing</source>
            <translation>Bei der Installation angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while checking for updates</source>
            <translation>Bei der Suche nach Updates abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while scanning local files</source>
            <translation>Beim Durchsuchen der lokalen Dateien abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while planning the update</source>
            <translation>Beim Planen des Updates abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while downloading</source>
            <translation>Beim Herunterladen abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while rebuilding files</source>
            <translation>Beim Neuerstellen der Dateien abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while verifying files</source>
            <translation>Beim Überprüfen der Dateien abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Cancelled while installing</source>
            <translation>Bei der Installation abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>.</source>
            <comment>decimal separator</comment>
            <translation>,</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>1 byte</source>
            <translation>1 Byte</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{n} bytes</source>
            <translation>{n} Bytes</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{number} {unit}</source>
            <comment>a size</comment>
            <translation>{number} {unit}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{size}/s</source>
            <comment>a speed</comment>
            <translation>{size}/s</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{s} s</source>
            <translation>{s} s</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{minutes} min</source>
            <translation>{minutes} Min.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{hours} h {minutes} min</source>
            <translation>{hours} Std. {minutes} Min.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{hours} h</source>
            <translation>{hours} Std.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>about {duration} left</source>
            <translation>noch etwa {duration}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Downloading {done} of {total}</source>
            <translation>{done} von {total} heruntergeladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{size} reused</source>
            <translation>{size} wiederverwendet</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{done} of {total}</source>
            <translation>{done} von {total}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Installing · {done} of {total} file</source>
            <translation>Installation · {done} von {total} Datei</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Installing · {done} of {total} files</source>
            <translation>Installation · {done} von {total} Dateien</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <location filename="../../app/gui/window.py" />
            <source>{phase}…</source>
            <translation>{phase} …</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Paused — {done} of {total}</source>
            <translation>Pausiert – {done} von {total}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <location filename="../../app/gui/window.py" />
            <source>Paused</source>
            <translation>Pausiert</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update was cancelled. Your files were not changed.</source>
            <translation>Das Update wurde abgebrochen. Deine Dateien wurden nicht verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Another update of this game is running. Wait for it to finish, then try again.</source>
            <translation>Ein anderes Update dieses Spiels läuft gerade. Warte, bis es fertig ist, und versuche es dann erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>There is not enough free disk space: {needed} needed, {free} free. Free some space and try again.</source>
            <translation>Es ist nicht genug Speicherplatz frei: {needed} benötigt, {free} frei. Gib etwas Speicherplatz frei und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The updater is not allowed to change the files in the game folder. Close the game if it is running, or choose another folder, and try again.</source>
            <translation>Der Updater darf die Dateien im Spielordner nicht ändern. Beende das Spiel, falls es läuft, oder wähle einen anderen Ordner, und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>A file on this computer could not be read or written. Check that the disk is connected and not full, and try again.</source>
            <translation>Eine Datei auf diesem Computer konnte nicht gelesen oder geschrieben werden. Prüfe, ob das Laufwerk angeschlossen und nicht voll ist, und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Something unexpected went wrong in the updater. Try again; if it keeps happening, send the details to the publisher.</source>
            <translation>Im Updater ist etwas Unerwartetes schiefgegangen. Versuche es erneut; wenn es wieder passiert, schicke die Details an den Herausgeber.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update server does not have this release (error {code}). Try again later.</source>
            <translation>Der Update-Server hat diese Version nicht (Fehler {code}). Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update server refused the download (error {code}). Try again later.</source>
            <translation>Der Update-Server hat den Download verweigert (Fehler {code}). Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update server is having trouble (error {code}). Try again in a few minutes.</source>
            <translation>Der Update-Server hat Probleme (Fehler {code}). Versuche es in ein paar Minuten erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update server answered with an error (error {code}). Try again later.</source>
            <translation>Der Update-Server hat mit einem Fehler geantwortet (Fehler {code}). Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update server sent a reply the updater could not use. Try again later; if it keeps happening, tell the publisher.</source>
            <translation>Der Update-Server hat eine Antwort geschickt, die der Updater nicht verwenden kann. Versuche es später erneut; wenn es wieder passiert, wende dich an den Herausgeber.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update server could not be reached. Check your connection and try again.</source>
            <translation>Der Update-Server ist nicht erreichbar. Prüfe deine Internetverbindung und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update is not signed by the publisher, so it was not installed. Nothing was changed.</source>
            <translation>Das Update ist nicht vom Herausgeber signiert und wurde daher nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The server offers an older version ({offered}) than the one you have ({installed}), so it was not installed. Nothing was changed.</source>
            <translation>Der Server bietet eine ältere Version ({offered}) als deine ({installed}) an, daher wurde sie nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The server offers an older version than the one you have, so it was not installed. Nothing was changed.</source>
            <translation>Der Server bietet eine ältere Version als deine an, daher wurde sie nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update on the server has expired, so it was not installed. Nothing was changed.</source>
            <translation>Das Update auf dem Server ist abgelaufen und wurde daher nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update tried to write outside the game folder, so it was refused. Nothing was changed.</source>
            <translation>Das Update wollte außerhalb des Spielordners schreiben und wurde daher abgelehnt. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>A downloaded file arrived damaged. Nothing was changed. Try again; if it keeps happening, tell the publisher.</source>
            <translation>Eine heruntergeladene Datei ist beschädigt angekommen. Es wurde nichts verändert. Versuche es erneut; wenn es wieder passiert, wende dich an den Herausgeber.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update on the server is damaged or incomplete. Nothing was changed. Try again later.</source>
            <translation>Das Update auf dem Server ist beschädigt oder unvollständig. Es wurde nichts verändert. Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{version} (new install)</source>
            <translation>{version} (Neuinstallation)</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{size} ({percent}% saved)</source>
            <translation>{size} ({percent} % gespart)</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>({size} already downloaded)</source>
            <translation>({size} bereits heruntergeladen)</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{size} already downloaded: it continues where it stopped.</source>
            <translation>{size} bereits heruntergeladen: Es geht dort weiter, wo es aufgehört hat.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Nothing has been downloaded yet.</source>
            <translation>Es wurde noch nichts heruntergeladen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{needed} needed · {free} free</source>
            <translation>{needed} benötigt · {free} frei</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Installed {product} {version}.</source>
            <translation>{product} {version} wurde installiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Installed {version}.</source>
            <translation>Version {version} wurde installiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Updated {product} from {old} to {version}.</source>
            <translation>{product} wurde von {old} auf {version} aktualisiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Updated from {old} to {version}.</source>
            <translation>Von {old} auf {version} aktualisiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Downloaded {now} (and {before} before it was stopped), reused {reused} from your existing files.</source>
            <translation>{now} heruntergeladen (und {before}, bevor es angehalten wurde), {reused} aus deinen vorhandenen Dateien wiederverwendet.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Downloaded {now}, reused {reused} from your existing files.</source>
            <translation>{now} heruntergeladen, {reused} aus deinen vorhandenen Dateien wiederverwendet.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Downloaded {now} (and {before} before it was stopped).</source>
            <translation>{now} heruntergeladen (und {before}, bevor es angehalten wurde).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Downloaded {now}.</source>
            <translation>{now} heruntergeladen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{product} is up to date (version {version}).</source>
            <translation>{product} ist auf dem neuesten Stand (Version {version}).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The game is up to date (version {version}).</source>
            <translation>Das Spiel ist auf dem neuesten Stand (Version {version}).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <location filename="../../app/gui/view.py" />
            <source>Cancelled</source>
            <translation>Abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stopped</source>
            <translation>Angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Could not check for updates</source>
            <translation>Suche nach Updates nicht möglich</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Installation cancelled</source>
            <translation>Installation abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Update cancelled</source>
            <translation>Update abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The installation did not finish</source>
            <translation>Die Installation wurde nicht abgeschlossen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The update did not finish</source>
            <translation>Das Update wurde nicht abgeschlossen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The installation was cancelled. What was downloaded is kept for next time.</source>
            <translation>Die Installation wurde abgebrochen. Was bereits heruntergeladen wurde, bleibt für das nächste Mal erhalten.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stop the installation?</source>
            <translation>Installation abbrechen?</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stop the installation? What was already downloaded is kept for next time.</source>
            <translation>Installation abbrechen? Was bereits heruntergeladen wurde, bleibt für das nächste Mal erhalten.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;Stop download</source>
            <translation>Download &amp;stoppen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;Keep downloading</source>
            <translation>&amp;Weiter herunterladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stop the update?</source>
            <translation>Update abbrechen?</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Stop the update? Your files stay as they were; what was already downloaded is kept for next time.</source>
            <translation>Update abbrechen? Deine Dateien bleiben, wie sie waren; was bereits heruntergeladen wurde, bleibt für das nächste Mal erhalten.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>No folder was chosen, so nothing was installed. Choose Retry to pick one.</source>
            <translation>Es wurde kein Ordner gewählt, daher wurde nichts installiert. Wähle „Erneut versuchen“, um einen auszuwählen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>You cannot install in {chosen} without administrator rights, so the game will go in your own folder, {per_user}. Choose Change… to pick another.</source>
            <translation>Ohne Administratorrechte kannst du nicht in {chosen} installieren, daher kommt das Spiel in deinen eigenen Ordner, {per_user}. Wähle „Ändern …“, um einen anderen auszuwählen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Couldn't check for updates — you can still play {product} {version}.</source>
            <translation>Die Suche nach Updates war nicht möglich – du kannst {product} {version} trotzdem spielen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Couldn't check for updates — you can still play {version}.</source>
            <translation>Die Suche nach Updates war nicht möglich – du kannst Version {version} trotzdem spielen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>1 file</source>
            <translation>1 Datei</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{n} files</source>
            <translation>{n} Dateien</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{names} and {n} more</source>
            <translation>{names} und {n} weitere</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;More</source>
            <translation>&amp;Mehr</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;Verify and repair files</source>
            <translation>Dateien prüfen und &amp;reparieren</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;Uninstall…</source>
            <translation>&amp;Deinstallieren …</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Files repaired</source>
            <translation>Dateien repariert</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>All files are intact</source>
            <translation>Alle Dateien sind in Ordnung</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>All {files} of {what} are intact. Nothing was downloaded.</source>
            <translation>Alle {files} von {what} sind in Ordnung. Es wurde nichts heruntergeladen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Repaired {files}, downloaded {size}.</source>
            <translation>{files} repariert, {size} heruntergeladen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The game was also updated to version {version}.</source>
            <translation>Das Spiel wurde außerdem auf Version {version} aktualisiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Repair cancelled</source>
            <translation>Reparatur abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The repair was cancelled. Your files were not changed.</source>
            <translation>Die Reparatur wurde abgebrochen. Deine Dateien wurden nicht verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>The repair did not finish</source>
            <translation>Die Reparatur wurde nicht abgeschlossen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Verifying and repairing files in {folder}</source>
            <translation>Dateien in {folder} werden geprüft und repariert</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>This removes {name} {version} from {folder}: its {files}, its shortcuts and the updater's records of it.</source>
            <translation>Damit wird {name} {version} aus {folder} entfernt: seine {files}, seine Verknüpfungen und die Einträge des Updaters dazu.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Files you made there stay ({files}: {names}).</source>
            <translation>Dateien, die du dort angelegt hast, bleiben erhalten ({files}: {names}).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>There are no files of yours in that folder.</source>
            <translation>In diesem Ordner liegen keine Dateien von dir.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;Uninstall</source>
            <translation>&amp;Deinstallieren</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Uninstall {name}?</source>
            <translation>{name} deinstallieren?</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>&amp;Keep the game</source>
            <translation>Spiel &amp;behalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Removed {files} from {folder}.</source>
            <translation>{files} aus {folder} entfernt.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Kept {files} you made: {names}.</source>
            <translation>{files} von dir behalten: {names}.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Not removed: {items}.</source>
            <translation>Nicht entfernt: {items}.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>{name} was uninstalled</source>
            <translation>{name} wurde deinstalliert</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Could not uninstall: {reason}</source>
            <translation>Deinstallation nicht möglich: {reason}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>damaged: {detail}</source>
            <translation>beschädigt: {detail}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>missing: {detail}</source>
            <translation>fehlt: {detail}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Uninstall not confirmed: nothing removed</source>
            <translation>Deinstallation nicht bestätigt: nichts entfernt</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Uninstalling {detail}</source>
            <translation>{detail} wird deinstalliert</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Warning: not removed: {detail}</source>
            <translation>Warnung: nicht entfernt: {detail}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" />
            <source>Warning: {detail}</source>
            <translation>Warnung: {detail}</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Overall progress</source>
            <translation>Gesamtfortschritt</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>C&amp;hange…</source>
            <translation>Ä&amp;ndern …</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Version:</source>
            <translation>Version:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Download:</source>
            <translation>Download:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Reused from your files:</source>
            <translation>Aus deinen Dateien wiederverwendet:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Disk space:</source>
            <translation>Speicherplatz:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Install to:</source>
            <translation>Installieren nach:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>What's new</source>
            <translation>Neuigkeiten</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Release notes</source>
            <translation>Versionshinweise</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>&amp;Show details</source>
            <translation>Details an&amp;zeigen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Technical details</source>
            <translation>Technische Details</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>&amp;Details</source>
            <translation>&amp;Details</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Details log</source>
            <translation>Protokoll</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Log</source>
            <translation>Protokoll</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Files</source>
            <translation>Dateien</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <location filename="../../app/gui/window.py" />
            <source>&amp;Pause</source>
            <translation>&amp;Pause</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>&amp;Cancel</source>
            <translation>&amp;Abbrechen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>&amp;Retry</source>
            <translation>&amp;Erneut versuchen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <location filename="../../app/gui/window.py" />
            <source>&amp;Update</source>
            <translation>Ak&amp;tualisieren</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>&amp;Play</source>
            <translation>&amp;Spielen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>C&amp;lose</source>
            <translation>S&amp;chließen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>Error</source>
            <translation>Fehler</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" />
            <source>&amp;Hide details</source>
            <translation>Details aus&amp;blenden</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Choose where to install {name}</source>
            <translation>Wähle, wo {name} installiert werden soll</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Choose where to install the game</source>
            <translation>Wähle, wo das Spiel installiert werden soll</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>({size} needed)</source>
            <translation>({size} benötigt)</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Cannot write to {chosen}; using {per_user}</source>
            <translation>Kein Schreibzugriff auf {chosen}; stattdessen {per_user}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Updating in {folder}</source>
            <translation>Aktualisierung in {folder}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Resumed</source>
            <translation>Fortgesetzt</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Cancelling…</source>
            <translation>Wird abgebrochen …</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Install folder: {folder}</source>
            <translation>Installationsordner: {folder}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Starting {command}</source>
            <translation>Starte {command}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Could not start the game: {error}</source>
            <translation>Das Spiel konnte nicht gestartet werden: {error}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Offered version {offered}; installed {installed}</source>
            <translation>Angebotene Version {offered}; installiert: {installed}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>nothing</source>
            <translation>nichts</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Warning: {warning}</source>
            <translation>Warnung: {warning}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Plan: download {download} in about {requests} requests, reuse {reused}</source>
            <translation>Plan: {download} in etwa {requests} Anfragen herunterladen, {reused} wiederverwenden</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Continuing where it stopped</source>
            <translation>Es geht dort weiter, wo es aufgehört hat</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Warning: could not remember the install folder: {error}</source>
            <translation>Warnung: Der Installationsordner konnte nicht gespeichert werden: {error}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Failed: {reason}</source>
            <translation>Fehlgeschlagen: {reason}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Ready to install {what}</source>
            <translation>Bereit zur Installation von {what}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Update available: {what}</source>
            <translation>Update verfügbar: {what}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>&amp;Install</source>
            <translation>&amp;Installieren</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Up to date</source>
            <translation>Auf dem neuesten Stand</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>No update needed</source>
            <translation>Kein Update nötig</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>Version {version}</source>
            <translation>Version {version}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>There is not enough free disk space for this update. Free some space, then choose Retry.</source>
            <translation>Für dieses Update ist nicht genug Speicherplatz frei. Gib etwas Speicherplatz frei und wähle dann „Erneut versuchen“.</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>There is not enough free disk space there. Choose another folder.</source>
            <translation>Dort ist nicht genug Speicherplatz frei. Wähle einen anderen Ordner.</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>&amp;Resume</source>
            <translation>&amp;Fortsetzen</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" />
            <source>{percent}% · {title}</source>
            <translation>{percent} % · {title}</translation>
        </message>
    </context>
</TS>
